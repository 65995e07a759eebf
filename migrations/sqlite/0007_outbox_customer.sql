-- Which customer an outbox row concerns, and whether its payload holds that customer's
-- personal data (a cache write holds the whole hash: phone number, PIN HMAC). Erasing the
-- customer deletes those rows by these columns, whatever the subject's shape.
alter table outbox add column customer_id text;
alter table outbox add column personal integer not null default 0 check (personal in (0, 1));

-- Rows queued before this migration: cache writes name their customer in the subject
-- (`card:N customer:ID` or `card:OLD customer:ID card:NEW`).
update outbox
   set personal = 1,
       customer_id = substr(subject, instr(subject, 'customer:') + 9, 32)
 where kind = 'cache_write' and instr(subject, 'customer:') > 0;

create index outbox_personal on outbox (customer_id) where personal;
