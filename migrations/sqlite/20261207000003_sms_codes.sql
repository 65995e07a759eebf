-- One-time codes sent by SMS (contract section 8): for a step-up, a phone change (to the new
-- number) and a reset of the web credential. Six digits, ten minutes, single use, at most five
-- tries; only a salted hash of the code is kept. A customer has at most one code per purpose: a
-- new one replaces the old.
create table sms_codes (
    customer_id  text not null,
    -- 'step_up', 'phone' or 'reset'.
    purpose      text not null,
    -- SHA-256 of the salt followed by the code, hex.
    code_hash    text not null,
    salt         text not null,
    -- The session a step-up or phone code was asked in (its id's hash); null for a reset.
    session_hash text,
    -- The new number a phone code proves (E.164); personal data: an erasure deletes the row.
    phone_number text,
    attempts     integer not null default 0,
    expires_at   text not null,
    created_at   text not null,
    primary key (customer_id, purpose)
) strict;

create index sms_codes_expires on sms_codes (expires_at);
