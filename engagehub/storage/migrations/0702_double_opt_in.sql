-- Double opt-in (issue 20): the expiry sweep finds pending requests without scanning every
-- subscription (a partial index: only pending rows are in it).
CREATE INDEX subscription_states_pending ON subscription_states (event_time)
WHERE status = 'pending';
