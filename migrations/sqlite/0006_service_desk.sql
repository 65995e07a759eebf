-- The service desk (its own API): lock reasons and unlock, card replacement, erasure of
-- personal data, and an audit trail that names who did what.
--
-- SQLite cannot drop a column's unique constraint or not-null in place: `cards` and
-- `audit_log` are rebuilt. `wallets` references `cards`, so it is rebuilt with it: dropped
-- before `cards`, so that no row refers to a dropped table, and renamed after, so that its
-- reference follows `cards_new` to its final name.

create table cards_new (
    card_number  text primary key check (length(card_number) between 1 and 32),
    -- Not unique any more: a replacement card joins the customer of the card it replaces.
    customer_id  text not null references customers (id),
    status       text not null check (status in ('WaitingForActivation', 'Active', 'Locked')),
    pin_hmac     text not null,
    registration_fingerprint text not null,
    version      integer not null default 1,
    created_at   text not null,
    updated_at   text not null,
    -- Why a locked card is locked: 'Alcs' (ALCS's /lock), 'Lost', 'Stolen', 'Damaged',
    -- 'Fraud', 'CustomerRequest', 'Other', 'Erased'; null while the card is not locked.
    lock_reason  text,
    -- The desk's note on a lock (free text from a desk agent; cleared by an erasure).
    lock_note    text,
    -- The status an unlock returns the card to.
    status_before_lock text,
    -- The card that replaced this one: a replaced card stays locked for good.
    replaced_by  text
) strict;

-- Cards locked before reasons were recorded were locked by ALCS. Each customer then had one
-- card, so the customer's status tells whether that card had been activated.
insert into cards_new (card_number, customer_id, status, pin_hmac, registration_fingerprint,
                       version, created_at, updated_at, lock_reason, status_before_lock)
select card_number, customer_id, status, pin_hmac, registration_fingerprint, version,
       created_at, updated_at,
       case when status = 'Locked' then 'Alcs' end,
       case when status = 'Locked' then
           case when (select status from customers u where u.id = cards.customer_id) = 'Active'
           then 'Active' else 'WaitingForActivation' end
       end
from cards;

create table wallets_new (
    card_number   text not null references cards_new (card_number),
    wallet_id     text not null,
    position      integer not null,
    balance       text not null,
    has_stat      integer not null default 0 check (has_stat in (0, 1)),
    stat_lost            text,
    stat_transferred_out text,
    stat_transferred_in  text,
    stat_issued          text,
    version       text,
    created_at    text not null,
    updated_at    text not null,
    primary key (card_number, wallet_id)
) strict;

insert into wallets_new select * from wallets;
drop table wallets;
drop table cards;
alter table cards_new rename to cards;
alter table wallets_new rename to wallets;
create index cards_customer on cards (customer_id);

create table audit_log_new (
    id           integer primary key autoincrement,
    occurred_at  text not null,
    operation    text not null,
    -- Null for a change of a customer rather than of one card (the desk's phone change).
    card_number  text,
    customer_id  text not null,
    identity     text,
    details      text,
    -- Who made a change from the desk (the desk user's name); null for ALCS, whose POS
    -- `Identity` is in `identity`.
    actor        text
) strict;

insert into audit_log_new (id, occurred_at, operation, card_number, customer_id, identity, details)
select id, occurred_at, operation, card_number, customer_id, identity, details from audit_log;
drop table audit_log;
alter table audit_log_new rename to audit_log;
create index audit_log_card_number on audit_log (card_number, id);
create index audit_log_customer on audit_log (customer_id, id);

-- When the customer's personal data was erased (right to erasure); null if never.
alter table customers add column erased_at text;
create index customers_phone_number on customers (phone_number);

-- The desk shows each card's latest ALCS notice, and retries a card's dead one.
create index outbox_subject on outbox (subject, id);
