"""Destinations: canonical events delivered in signed batches to webhooks, Segment and NATS.

Each destination follows the log with its own durable cursor (the log is the outbox), holds at
most one in-flight batch whose seq range is fixed before the first attempt (so its idempotency
id is the same on every retry), and retries transient failures with backoff. Batches it refuses
for good go to ``dead_letters``; ``replay`` re-sends them or rewinds the cursor.
"""
