-- The customer's own data (contract section 8): the profile the customer completes, and the
-- consents with their proof.

-- The profile, each null until given (registration at the till leaves it missing). Personal
-- data: an erasure clears every one.
alter table customers add column first_name text;
alter table customers add column last_name text;
alter table customers add column email text;
alter table customers add column street text;
alter table customers add column house_number text;
alter table customers add column apartment_number text;
alter table customers add column postal_code text;
alter table customers add column city text;
-- YYYY-MM-DD.
alter table customers add column date_of_birth text;
-- `pl_PL` or `en_US`; projected into the customer's cache hash.
alter table customers add column preferred_language text;
alter table customers add column preferred_store text;
-- The consents in force, as `Purpose=version` entries (comma-separated, by purpose): the
-- projection of the events below that the cache shows as `Consent.{Purpose}`.
alter table customers add column consents text not null default '';
-- When the customer objected to all marketing (art. 21); null while not objecting.
alter table customers add column objected_at text;

-- Every change of a consent or of the objection, never updated: the proof (art. 7(1)).
create table consent_events (
    id           integer primary key autoincrement,
    customer_id  text not null,
    -- The purpose; null for the objection, which concerns all marketing.
    purpose      text,
    -- 'Given', 'Withdrawn', 'Objected', 'ObjectionWithdrawn'.
    action       text not null,
    -- The text shown when the consent was given: its version, and the SHA-256 of its bytes.
    text_version text,
    text_sha256  text,
    -- The language the text was shown in (`pl_PL`, `en_US`).
    language     text,
    -- 'web', 'api' or 'desk'.
    channel      text not null,
    -- Who: the customer (`customer:self`) or the desk user's name.
    actor        text not null,
    occurred_at  text not null,
    -- The request it was made by (X-Request-Id), for tracing it in the logs.
    request_id   text
) strict;

create index consent_events_customer on consent_events (customer_id, id);
