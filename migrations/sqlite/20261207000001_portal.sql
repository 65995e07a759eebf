-- The customer portal (contract section 8): the sessions of every wing in one table, the
-- customer's own web credential, and the throttle on sign-ins by card number.

-- Sessions of the desk's console and of the customer portal, shared by every instance. Only
-- the session id's SHA-256 is stored, so a copy of this table opens no session. A session ends
-- on sign-out, after the idle timeout, at `expires_at` whatever its use, and as its wing says
-- (the desk: its token revoked; the portal: a new credential, a card lock, an erasure).
create table sessions (
    id_hash        text primary key,
    -- Whose session: 'desk' (console) or 'portal' (customer).
    audience       text not null,
    -- Who holds it: the desk user's name, or the customer's id.
    holder         text not null,
    -- What it was opened with: the SHA-256 of the desk token, or the card number signed in with.
    credential     text not null,
    -- How it was opened: 'token' (desk); 'pin', or the customer's own secret (portal).
    level          text not null,
    -- What the holder sees and ends the session by (never the id itself).
    public_id      text not null unique,
    created_at     text not null,
    last_seen_at   text not null,
    expires_at     text not null,
    -- Raised by a step-up until then (portal); null when never.
    elevated_until text
) strict;

create index sessions_holder on sessions (audience, holder);
create index sessions_expires on sessions (expires_at);
create index sessions_last_seen on sessions (last_seen_at);

insert into sessions (id_hash, audience, holder, credential, level, public_id,
                      created_at, last_seen_at, expires_at)
select id_hash, 'desk', user_name, token_hash, 'token', substr(id_hash, 1, 32),
       created_at, last_seen_at, expires_at
  from desk_sessions;

drop table desk_sessions;

-- The secret the customer chose for the web, once set (the PIN then no longer signs in there).
create table web_credentials (
    customer_id   text primary key references customers (id),
    -- Argon2id in the PHC string format (salt and parameters included).
    secret_hash   text not null,
    set_at        text not null
) strict;

-- Failed sign-ins per *submitted* card number, whether a card has it or not (so that the
-- throttle answers alike for both): how many in a row, and when the last one was. A success,
-- the desk, or a reset by SMS deletes the row; housekeeping forgets rows long quiet.
create table sign_in_failures (
    card_number    text primary key,
    failures       integer not null,
    last_failed_at text not null
) strict;

-- The service-wide breaker counts the card numbers that failed lately.
create index sign_in_failures_last on sign_in_failures (last_failed_at);
