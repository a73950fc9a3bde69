-- Least-privilege database roles of the functions. NOT a migration (migrations are the
-- numbered files, run by the owner); run this as the owner of the tables (on RDS: the master
-- user) AFTER the migrations, and again after any migration that adds a table:
--
--   psql "$OWNER_URL" -v ON_ERROR_STOP=1 -f migrations/bootstrap/roles.sql
--
-- Idempotent: roles are created when missing, grants repeat harmlessly. It creates LOGIN roles
-- without a password; give each one a password (ALTER ROLE mdb_api PASSWORD '…') and its
-- function that role's secret. Roles are per server, grants per database: run it in each
-- database the functions use.
--
--   mdb_api       price-api: stores each fetched quote and marks its event delivered; reads
--                 price points and moving averages (history, moving-average routes)
--   mdb_consumer  ma-consumer: writes price points, moving averages and dead letters, reads
--                 the points and averages a batch builds on
--   mdb_poller    poller (and its re-publisher): stores fetched quotes, marks them delivered,
--                 claims and releases the undelivered ones
--
-- None of them owns a table or may create one (no DDL), in the schema or as temporary tables.

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['mdb_api', 'mdb_consumer', 'mdb_poller'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format(
                    'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT',
                    role_name);
            EXCEPTION
                -- Another session (a second database's bootstrap) created it meanwhile.
                WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;

    -- No temporary tables and no new schemas for anyone but those granted them by name; only
    -- these roles (and the owner) connect.
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mdb_api, mdb_consumer, mdb_poller',
                   current_database());
END
$roles$;

-- PostgreSQL before 15 lets every role create tables in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO mdb_api, mdb_consumer, mdb_poller;

-- Whatever an earlier run granted and this one no longer does, goes.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM mdb_api, mdb_consumer, mdb_poller;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM mdb_api, mdb_consumer, mdb_poller;

-- price-api: insert_raw, mark_delivered (an UPDATE that reads id and event_delivered_at),
-- history and moving-average reads.
GRANT SELECT, INSERT, UPDATE ON raw_market_data TO mdb_api;
GRANT SELECT ON price_points, moving_averages TO mdb_api;

-- ma-consumer: apply_batch (points with ON CONFLICT DO NOTHING … RETURNING, the context a
-- window needs, averages upserted, dead letters with ON CONFLICT DO NOTHING).
GRANT SELECT, INSERT ON price_points TO mdb_consumer;
GRANT SELECT, INSERT, UPDATE ON moving_averages TO mdb_consumer;
GRANT SELECT, INSERT ON dead_letters TO mdb_consumer;

-- poller and re-publisher: insert_raw, mark_delivered, claim_undelivered (UPDATE … FOR UPDATE
-- SKIP LOCKED … RETURNING), release.
GRANT SELECT, INSERT, UPDATE ON raw_market_data TO mdb_poller;
