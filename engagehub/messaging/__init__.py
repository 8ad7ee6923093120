"""Messaging: templates, providers, subscribed-only sends, unsubscribe links, broadcasts, journeys.

Every send is one ``message_sends`` row whose id is the message id passed to the provider, so
the provider's webhooks (``vendors/``) attach their events to the same message.
"""
