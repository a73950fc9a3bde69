-- Lookups of the consumer and the history API.
--
-- The consumer recomputes the stored averages a late price point affects: it finds them by
-- symbol and time, across kinds and windows, which the primary key's order cannot serve.
CREATE INDEX IF NOT EXISTS moving_averages_symbol_as_of
    ON moving_averages (symbol, as_of);

-- Points are read newest first by (quote_time, raw_response_id), both descending: an index
-- on both columns ascending serves that order read backwards, with ties broken in the index.
CREATE INDEX IF NOT EXISTS price_points_symbol_order
    ON price_points (symbol, quote_time, raw_response_id);
DROP INDEX IF EXISTS price_points_symbol_quote_time;
