-- What the pruning job (`crate::service::housekeeping`) deletes, found by time without a scan:
-- ALCS notices kept after delivery, the audit trail past its retention, failed activations
-- that left their window.
create index outbox_delivered on outbox (delivered_at) where status = 'delivered';
create index audit_log_occurred on audit_log (occurred_at);
create index activation_failures_at on activation_failures (failed_at);
