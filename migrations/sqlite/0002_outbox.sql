-- The transactional outbox (contract section 7): side effects recorded in the same transaction
-- as the change, delivered after commit. Delivered rows are deleted.
create table outbox (
    id              integer primary key autoincrement,
    -- What to do: 'cache_write' (one Redis hash).
    kind            text not null,
    -- What it concerns, for operators (e.g. `card:99419283746389`); never personal data.
    subject         text not null,
    -- The effect as JSON; for cache writes the whole hash, which holds the PIN HMAC and phone
    -- number like the tables it was read from.
    payload         text not null,
    -- 'pending' until delivered; later kinds add their own terminal states.
    status          text not null default 'pending',
    attempts        integer not null default 0,
    -- Not before this time; claiming pushes it forward by a lease so one worker has the row.
    next_attempt_at text not null,
    -- Why the last attempt failed (no personal data).
    last_error      text,
    created_at      text not null
) strict;

create index outbox_due on outbox (status, next_attempt_at);
