"""Every setting, declared once: env variables ``ENGAGEHUB_*``, overridden by CLI flags.

Settings are grouped per feature: each group is a class below, ``Settings`` combines them
and is what code reads (``settings.smtp_host``; one flat namespace, so every env variable is
``ENGAGEHUB_`` + the field name). A new setting goes at the end of its feature's group; a new
feature gets a group of its own, added to ``Settings``'s bases and ``GROUPS``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_TOKEN = 16
_CONFIG = SettingsConfigDict(env_prefix="ENGAGEHUB_", use_attribute_docstrings=True, extra="ignore")


class ServerSettings(BaseSettings):
    """Where the server listens, its database and its admin credential."""

    model_config = _CONFIG

    database_url: str = "sqlite:///./engagehub.db"
    """SQLite file (``sqlite:///path``) or PostgreSQL URL (``postgresql://user@host/db``)."""

    host: str = "127.0.0.1"
    """Address ``engagehub serve`` listens on."""

    port: int = Field(default=8000, ge=0, le=65535)
    """Port ``engagehub serve`` listens on."""

    admin_token: SecretStr | None = None
    """Bearer token for the management API and dashboard (at least 16 characters); generated and
    printed once if unset."""

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """NORMAL survives a killed process; FULL also survives power loss (fsync per commit)."""

    public_base_url: str | None = None
    """Public URL of this server as vendors see it (Twilio signs it); behind a proxy set it."""

    log_format: Literal["text", "json"] = "text"
    """Log lines as plain text or as one JSON object per line."""

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        """A short admin token can be guessed: refuse it (empty means unset)."""
        if value is not None and 0 < len(value.get_secret_value()) < MIN_ADMIN_TOKEN:
            raise ValueError(
                f"ENGAGEHUB_ADMIN_TOKEN is {len(value.get_secret_value())} characters; use at "
                f"least {MIN_ADMIN_TOKEN} (e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return value


class IngestSettings(BaseSettings):
    """What ingest accepts: body sizes, signature windows, phone numbers' region."""

    model_config = _CONFIG

    max_event_bytes: int = Field(default=32 * 1024, gt=0)
    """Largest single event accepted (Segment's limit: 32 KB)."""

    max_batch_bytes: int = Field(default=500 * 1024, gt=0)
    """Largest request body accepted on ingest routes (Segment's limit: 500 KB)."""

    max_webhook_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """Largest vendor webhook body accepted (SendGrid and Currents batches can be large)."""

    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """Largest file accepted by upload endpoints (CSV imports)."""

    max_api_body_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest body accepted by management API writes (subscriptions...)."""

    default_region: str = "US"
    """Region used to read phone numbers written without a country code."""

    signature_tolerance_seconds: int = Field(default=300, ge=0)
    """How old a signed webhook timestamp may be (replay window), in seconds."""


class ProcessingSettings(BaseSettings):
    """How the log processors and background services run inside ``serve``."""

    model_config = _CONFIG

    run_processors: bool = True
    """Run the log processors inside ``serve`` right after each commit (embedded mode)."""

    run_services: bool = True
    """Run background services (deliveries, broadcasts, timers) inside ``serve``."""

    processor_batch: int = Field(default=5000, gt=0)
    """Log positions of one processing round (one transaction for every processor)."""

    processor_mode: Literal["process", "thread"] = "process"
    """Where ``serve`` runs the processors: a child process (both cores) or a server thread."""


class ConsentSettings(BaseSettings):
    """What vendor signals do to consent."""

    model_config = _CONFIG

    consent_spam_policy: Literal["unsubscribe", "ignore"] = "unsubscribe"
    """A spam report unsubscribes the email address (``unsubscribe``) or only is recorded."""

    consent_bounce_policy: Literal["unsubscribe", "ignore"] = "unsubscribe"
    """A hard bounce suppresses the address (unsubscribed, reason hard_bounce), or is ignored."""

    consent_machine_unsubscribe_policy: Literal["record", "confirm", "apply"] = "confirm"
    """Unsubscribes made by link scanners: ``apply`` them, only ``record`` them, or hold them
    until the person ``confirm``s (our unsubscribe page asks; see docs/deliverability.md)."""


class ScaleOutSettings(BaseSettings):
    """PostgreSQL pools, partitions, retention and workers."""

    model_config = _CONFIG

    postgres_pool_size: int = Field(default=8, ge=1)
    """Pooled reader connections per process (plus one writer); mind max_connections."""

    retention_days: int | None = Field(default=None, ge=1)
    """Drop whole monthly event partitions older than this (PostgreSQL); unset keeps all."""

    partitions_ahead: int = Field(default=2, ge=0, le=24)
    """Monthly event partitions created ahead of time (PostgreSQL)."""

    maintenance_interval: float = Field(default=3600.0, gt=0)
    """Seconds between partition maintenance runs (create ahead, apply retention)."""

    worker_poll_interval: float = Field(default=0.2, gt=0)
    """Seconds between an idle worker's looks at the log (PostgreSQL appends also NOTIFY it)."""

    processor_shards: int = Field(default=1, ge=1, le=64)
    """Cursors per shardable processor, so that many workers divide its work (PostgreSQL)."""


class OperationsSettings(BaseSettings):
    """Monitoring endpoints."""

    model_config = _CONFIG

    metrics_token: SecretStr | None = None
    """Bearer token Prometheus must send to ``/metrics``; unset, ``/metrics`` is open."""


class DestinationSettings(BaseSettings):
    """Forwarding to destinations: SSRF guard, timeouts, retries."""

    model_config = _CONFIG

    allow_private_destinations: bool = False
    """Allow destination URLs that resolve to loopback, private, link-local or unspecified
    addresses (refused by default: SSRF guard)."""

    destination_timeout_seconds: float = Field(default=10.0, gt=0)
    """Seconds to wait for a destination to answer one batch before retrying it."""

    destination_max_attempts: int = Field(default=12, ge=1)
    """Attempts of one batch on transient failures before it goes to the dead letters."""

    destination_backoff_seconds: float = Field(default=1.0, ge=0)
    """First retry delay; doubles per attempt (with full jitter) up to the maximum below."""

    destination_backoff_max_seconds: float = Field(default=300.0, ge=0)
    """Longest retry delay (a Retry-After header may ask for longer, up to one hour)."""

    destination_workers: int = Field(default=8, ge=1)
    """Destinations delivered to at the same time (a slow one holds only its own worker)."""


class SecuritySettings(BaseSettings):
    """Limits on what any caller can make the server hold or do."""

    model_config = _CONFIG

    rate_limit_per_second: float = Field(default=5000.0, ge=0)
    """Requests a second each credential (or client address) may make; 0 turns limiting off."""

    rate_limit_burst: int = Field(default=10000, gt=0)
    """Requests a credential may make at once before the per-second rate applies (bucket size)."""

    max_anonymous_body_bytes: int = Field(default=64 * 1024, gt=0)
    """Largest body a request without a verified credential may send outside the ingest routes
    (login and unsubscribe forms); uploads are read only once the admin token checked out."""

    max_path_chars: int = Field(default=2048, gt=0)
    """Longest request path accepted (414 beyond): nothing keyed by a path can grow large."""

    auth_failure_rate_per_second: float = Field(default=10.0, ge=0)
    """Failed authentications (401) a client address may have a second once its burst is used
    up; then its unauthenticated requests get 429. 0 turns this off."""

    auth_failure_burst: int = Field(default=1000, gt=0)
    """Failed authentications a client address may have at once before the rate above applies."""

    source_cache_size: int = Field(default=10_000, gt=0)
    """Source lookups (by name or write key, misses too) kept in memory; least recent dropped."""

    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """Time a connection has to send a request's complete headers before it is closed."""

    body_timeout_seconds: float = Field(default=20.0, gt=0)
    """Longest pause between two pieces of a request body before the connection is closed."""

    max_connections: int = Field(default=1000, ge=1)
    """Open connections (and requests) ``serve`` holds at once; beyond it answers 503 at once."""


class MessagingSettings(BaseSettings):
    """Sending our own messages: providers, link signing, retries."""

    model_config = _CONFIG

    secret_key: SecretStr | None = None
    """Key that signs unsubscribe/preference links; a random one is kept in the DB if unset."""

    email_provider: Literal["smtp", "sendgrid"] = "smtp"
    """Which provider sends email: an SMTP server or SendGrid's Mail Send v3 API."""

    email_from: str = "engagehub@localhost"
    """Sender address of emails (From header and envelope sender)."""

    smtp_host: str = "127.0.0.1"
    """SMTP server host."""

    smtp_port: int = Field(default=25, ge=1, le=65535)
    """SMTP server port."""

    smtp_username: str | None = None
    """SMTP login user name (no login when unset)."""

    smtp_password: SecretStr | None = None
    """SMTP login password."""

    smtp_starttls: bool = False
    """Upgrade SMTP connections with STARTTLS."""

    smtp_connections: int = Field(default=16, ge=1, le=256)
    """Parallel SMTP connections a sender opens."""

    sendgrid_api_key: SecretStr | None = None
    """SendGrid API key (Mail Send permission)."""

    sendgrid_base_url: str = "https://api.sendgrid.com"
    """SendGrid API base URL."""

    twilio_account_sid: str | None = None
    """Twilio account SID (SMS sending)."""

    twilio_auth_token: SecretStr | None = None
    """Twilio auth token."""

    twilio_from: str | None = None
    """Twilio sender: a phone number (E.164) or a Messaging Service SID (MG...)."""

    twilio_base_url: str = "https://api.twilio.com"
    """Twilio API base URL."""

    twilio_status_source: str | None = None
    """Name of the twilio source whose status webhook gets the StatusCallback URL."""

    provider_timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of one provider call; a timeout is retried (with the same idempotency key)."""

    send_max_attempts: int = Field(default=5, ge=1)
    """Attempts of one message before it is marked failed (transient errors only)."""

    send_batch: int = Field(default=200, ge=1)
    """Messages the sending service claims per transaction."""

    send_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claimed message stays reserved; after a crash it is resumed after this."""


class DeliverabilitySettings(BaseSettings):
    """Suppression rules, frequency caps, quiet hours, double opt-in."""

    model_config = _CONFIG

    suppression_soft_bounce_count: int = Field(default=3, ge=1)
    """Soft bounces (with no delivery between) that suppress an address: the rule's N."""

    suppression_soft_bounce_days: float = Field(default=7.0, gt=0)
    """Window of the soft-bounce rule in days (D): N soft bounces within D days suppress."""

    suppression_soft_bounce_suppress_days: float = Field(default=14.0, gt=0)
    """How long the soft-bounce rule suppresses an address, in days (T); then it expires."""

    frequency_cap: int = Field(default=0, ge=0)
    """Marketing messages a contact point may get per channel within the window; 0: no cap."""

    frequency_cap_window_hours: float = Field(default=24.0, gt=0)
    """Window of the frequency cap, in hours (a broadcast may override both)."""

    quiet_hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    """Local hours when marketing messages wait (``21:00-08:00``); unset: none."""

    default_timezone: str = "UTC"
    """Time zone of people without a ``timezone``/``time_zone`` trait (quiet hours)."""

    double_opt_in_template: str = "double-opt-in"
    """Template of the double opt-in confirmation message (``{{ data.confirm_url }}``)."""

    double_opt_in_expiry_hours: float = Field(default=72.0, gt=0)
    """How long a confirmation link works; unconfirmed requests then expire."""

    bot_click_min_seconds: float = Field(default=5.0, ge=0)
    """A click this soon after the message's delivery (else its send) is a link scanner's
    (``too_fast``); 0 turns the rule off. See docs/deliverability.md for the evidence."""

    bot_click_burst_links: int = Field(default=3, ge=0)
    """This many different links of one message clicked within ``bot_click_burst_seconds`` are
    a scanner's (``burst``, from the last of them on); 0 turns the rule off."""

    bot_click_burst_seconds: float = Field(default=1.0, gt=0)
    """The window of the burst rule, in seconds."""

    click_tracking: bool = True
    """Our own marketing emails: links go through ``/c/{token}`` (recorded as clicks, HEAD and
    hidden-link hits flagged as machines), plus one hidden honeypot link."""

    subscribe_form_rate_per_minute: float = Field(default=10.0, gt=0)
    """Public double opt-in form (``/subscribe``): submissions one client address may make a
    minute (the confirmations it sends go to people who did not ask)."""

    subscribe_form_frame_ancestors: str = "*"
    """Sites that may embed the ``/subscribe`` page in a frame (CSP ``frame-ancestors``
    sources, e.g. ``https://shop.example``); ``'none'`` forbids embedding."""


class PrivacySettings(BaseSettings):
    """Erasure requests vendors send."""

    model_config = _CONFIG

    privacy_vendor_erasure: Literal["record", "erase", "ignore"] = "record"
    """Vendor deletion requests in the log ("User Deleted": Braze UserDeleteRequest, Segment
    delete calls): record them for an operator to confirm, erase the person at once (sources with
    a secret; Segment write keys may be public, so theirs still wait), or ignore."""


class Settings(
    PrivacySettings,
    DeliverabilitySettings,
    MessagingSettings,
    SecuritySettings,
    DestinationSettings,
    OperationsSettings,
    ScaleOutSettings,
    ConsentSettings,
    ProcessingSettings,
    IngestSettings,
    ServerSettings,
):
    """engagehub configuration: every group's fields; the docs' settings table is generated
    from the fields' docstrings, one section per group. Bases are listed last group first so
    that fields keep the order of ``GROUPS`` (pydantic collects them from the last base)."""

    model_config = _CONFIG


GROUPS: tuple[type[BaseSettings], ...] = (
    ServerSettings,
    IngestSettings,
    ProcessingSettings,
    ConsentSettings,
    ScaleOutSettings,
    OperationsSettings,
    DestinationSettings,
    SecuritySettings,
    MessagingSettings,
    DeliverabilitySettings,
    PrivacySettings,
)
"""The groups in the order the settings reference lists them."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
