-- Which customer an outbox row concerns, and whether its payload holds that customer's
-- personal data (a cache write holds the whole hash: phone number, PIN HMAC). Erasing the
-- customer deletes those rows by these columns, whatever the subject's shape.
alter table outbox add column customer_id text;
alter table outbox add column personal boolean not null default false;

-- Rows queued before this migration: cache writes name their customer in the subject
-- (`card:N customer:ID` or `card:OLD customer:ID card:NEW`).
update outbox
   set personal = true,
       customer_id = substr(subject, position('customer:' in subject) + 9, 32)
 where kind = 'cache_write' and position('customer:' in subject) > 0;

create index outbox_personal on outbox (customer_id) where personal;
