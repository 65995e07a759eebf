-- The service desk (its own API): lock reasons and unlock, card replacement, erasure of
-- personal data, and an audit trail that names who did what.

-- A customer may hold several cards: a replacement card joins the customer of the card it
-- replaces. A card still belongs to exactly one customer (cards.customer_id is not null).
alter table cards drop constraint cards_customer_id_key;
create index cards_customer on cards (customer_id);

-- Why a locked card is locked: 'Alcs' (ALCS's /lock), 'Lost', 'Stolen', 'Damaged', 'Fraud',
-- 'CustomerRequest', 'Other', 'Erased'; null while the card is not locked.
alter table cards add column lock_reason text;
-- The desk's note on a lock (free text from a desk agent; cleared by an erasure).
alter table cards add column lock_note text;
-- The status an unlock returns the card to.
alter table cards add column status_before_lock text;
-- The card that replaced this one: a replaced card stays locked for good.
alter table cards add column replaced_by text;

-- Cards locked before reasons were recorded were locked by ALCS. Each customer then had one
-- card, so the customer's status tells whether that card had been activated.
update cards set lock_reason = 'Alcs',
    status_before_lock = case
        when (select status from customers u where u.id = cards.customer_id) = 'Active'
        then 'Active' else 'WaitingForActivation' end
where status = 'Locked';

-- When the customer's personal data was erased (right to erasure); null if never.
alter table customers add column erased_at timestamptz;
create index customers_phone_number on customers (phone_number);

-- Who made a change from the desk (the desk user's name); null for ALCS, whose POS
-- `Identity` is in `identity`. Changes of a customer rather than of one card (the desk's phone
-- change) have no card number.
alter table audit_log add column actor text;
alter table audit_log alter column card_number drop not null;
create index audit_log_customer on audit_log (customer_id, id);

-- The desk shows each card's latest ALCS notice, and retries a card's dead one.
create index outbox_subject on outbox (subject, id);
