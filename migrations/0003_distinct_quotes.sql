-- A price point is one distinct quote: the same symbol, source (provider) and provider
-- timestamp is stored once. Repeated fetches of an unchanged quote (a closed market, several
-- jobs polling one symbol) used to add copies, which weighed the averages and were re-read by
-- every later batch. Idempotent: the copies go (the first fetched stays: UUIDv7 ids sort by
-- fetch time), then the uniqueness holds every later insert to the rule.
DELETE FROM price_points p
 USING price_points q
 WHERE q.symbol = p.symbol
   AND q.source = p.source
   AND q.quote_time = p.quote_time
   AND q.raw_response_id < p.raw_response_id;

CREATE UNIQUE INDEX IF NOT EXISTS price_points_distinct_quote
    ON price_points (symbol, source, quote_time);
