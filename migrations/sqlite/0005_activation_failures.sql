-- Failed activations (wrong phone number) per card, to refuse guessing: after too many within
-- the window, activation answers 429 until the oldest leaves it. Rows older than the window
-- are deleted when the card's next failure is recorded. failed_at: RFC 3339, UTC.
create table activation_failures (
    card_number text not null,
    failed_at text not null
);

create index activation_failures_card on activation_failures (card_number, failed_at);
