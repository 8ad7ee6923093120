"""Where features plug in: their HTTP routers, log processors and CLI command groups.

Each feature package adds its lines here (and nowhere else in the core), so adding one touches
no other feature.
"""

from __future__ import annotations

from fastapi import APIRouter

from engagehub.processing import Processor
from engagehub.processing.services import Service
from engagehub.settings import Settings


def routers() -> list[APIRouter]:
    """Every HTTP router, ingest first."""
    from engagehub.access import api as access_api
    from engagehub.analytics import api as analytics_api
    from engagehub.api import events, sources, system, taxonomy
    from engagehub.consent import api as consent_api
    from engagehub.consent import csv_import_api
    from engagehub.consent import summary as consent_summary
    from engagehub.destinations import api as destinations_api
    from engagehub.ingest import segment_browser, webhooks
    from engagehub.messaging import api as messaging_api
    from engagehub.messaging import click_pages, confirm_pages, recipient_pages, subscribe_pages
    from engagehub.ops import api as ops_api
    from engagehub.ops import status as ops_status
    from engagehub.privacy import api as privacy_api
    from engagehub.profiles import api as profiles_api
    from engagehub.suppression import api as suppression_api
    from engagehub.web import routers as web_routers

    return [
        webhooks.router,
        system.router,
        events.router,
        sources.router,
        taxonomy.router,
        consent_api.router,
        csv_import_api.router,
        profiles_api.router,
        messaging_api.router,
        recipient_pages.router,
        ops_api.router,
        destinations_api.router,
        analytics_api.router,
        *web_routers(),
        segment_browser.router,
        ops_status.router,
        suppression_api.router,
        confirm_pages.router,
        consent_summary.router,
        access_api.router,
        privacy_api.router,
        click_pages.router,
        subscribe_pages.router,
    ]


def processors(settings: Settings) -> list[Processor]:
    """Every log processor, in the order they run after each commit."""
    from engagehub.analytics.processor import AnalyticsProcessor
    from engagehub.consent.processor import ConsentProcessor
    from engagehub.messaging.double_opt_in import ConfirmationProcessor
    from engagehub.messaging.journeys import JourneyProcessor
    from engagehub.privacy.requests import ErasureRequestProcessor
    from engagehub.processing.log_index import LogIndex
    from engagehub.processing.unmapped import UnmappedCounter
    from engagehub.profiles.processor import ProfileProcessor
    from engagehub.suppression.processor import SuppressionProcessor

    return [
        LogIndex(),
        UnmappedCounter(),
        ProfileProcessor(settings.default_region),  # before consent: user -> contact points
        ConsentProcessor(settings),
        AnalyticsProcessor(),
        JourneyProcessor(),
        SuppressionProcessor(settings),
        ConfirmationProcessor(settings),
        ErasureRequestProcessor(settings),  # after profiles: the request names a profile
    ]


def services(settings: Settings) -> list[Service]:
    """Every background service (outbox delivery, broadcasts, journey timers...)."""
    from engagehub.destinations.service import DeliveryService
    from engagehub.messaging.service import MessagingService
    from engagehub.privacy.service import ErasureService
    from engagehub.scaleout.maintenance import PartitionMaintenance

    return [
        PartitionMaintenance(settings, [p.name for p in processors(settings)]),
        DeliveryService(settings),
        MessagingService(settings),
        ErasureService(settings),
    ]
