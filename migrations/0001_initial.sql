-- The tables of DESIGN.md. Idempotent: safe to apply again on a database that has them.

-- Every response fetched from a provider, and whether its price event was delivered.
CREATE TABLE IF NOT EXISTS raw_market_data (
    id                 uuid        PRIMARY KEY,
    symbol             text        NOT NULL,
    provider           text        NOT NULL,
    price              numeric     NOT NULL CHECK (price > 0),
    quote_time         timestamptz NOT NULL,
    fetched_at         timestamptz NOT NULL,
    raw                jsonb       NOT NULL,
    -- NULL until the broker confirmed the event; the re-publisher looks for these.
    event_delivered_at timestamptz,
    -- When the re-publisher may (again) try this row: set past the first attempt's
    -- delivery timeout on insert, and moved forward as a lease each time it is claimed.
    republish_after    timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS raw_market_data_symbol_quote_time
    ON raw_market_data (symbol, quote_time DESC);

CREATE INDEX IF NOT EXISTS raw_market_data_undelivered
    ON raw_market_data (republish_after)
    WHERE event_delivered_at IS NULL;

-- One row per consumed price event; raw_response_id makes consumption idempotent.
CREATE TABLE IF NOT EXISTS price_points (
    raw_response_id uuid        PRIMARY KEY,
    symbol          text        NOT NULL,
    price           numeric     NOT NULL,
    quote_time      timestamptz NOT NULL,
    source          text        NOT NULL,
    consumed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS price_points_symbol_quote_time
    ON price_points (symbol, quote_time DESC, raw_response_id);

-- Moving averages per symbol, kind and window, as of the newest point they include.
CREATE TABLE IF NOT EXISTS moving_averages (
    symbol      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('sma', 'ema')),
    window_size integer     NOT NULL CHECK (window_size > 0),
    as_of       timestamptz NOT NULL,
    value       numeric     NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, kind, window_size, as_of)
);

-- Records the consumer could not process, kept whole with the reason.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    payload     bytea,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);
