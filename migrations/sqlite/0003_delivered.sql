-- ALCS activation notices are kept after delivery, for operators: when each was delivered.
-- Statuses now: 'pending', 'delivered', 'dead' (gave up; kept and counted), 'unsent' (no ALCS
-- URL was configured when it was recorded).
alter table outbox add column delivered_at text;
