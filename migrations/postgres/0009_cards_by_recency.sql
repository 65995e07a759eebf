-- A cache refill (and `cps cache rebuild`/`verify`) reads the cards most recently changed
-- first, a batch at a time after the last (updated_at, card_number) seen: the cards the tills
-- are about to ask for come back first, and each batch is a short range read of this index.
create index cards_by_recency on cards (updated_at, card_number);
