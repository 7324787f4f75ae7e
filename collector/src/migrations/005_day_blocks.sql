-- wiretime collector schema, version 5: day blocks (daily rows pre-merged for long windows) and
-- upper percentiles (bounds for a top-N by a percentile), both for the reporter.
--
-- A top-N or compare over a month reads one daily row (and one sketch) per key and day: 30 per
-- key. Day blocks hold the same daily rows merged over 2, 4, 8, 16, 32 and 64 days, each block
-- aligned to its own length in days since 1970-01-01 (a block of 4 days starts on a day number
-- divisible by 4), so that any whole-day window splits into a few blocks and single days: a
-- 30-day window into about 4 to 8 rows per key. Counts, sums, min/max and outcome counts add
-- and the DDSketches merge exactly, so a block answers what its daily rows answer.
--
-- Blocks are a copy, not a level: the daily rows stay, and a query over summaries_l2 never sees
-- a block (rows are still never in two places of summaries_l2). The roll-up adds each day to
-- its blocks in the transaction that writes the daily row (collector/src/rollup.ts), so a block
-- row holds the days of it rolled so far; the reporter reads a block only when rollup_day_blocks
-- says it is complete.

CREATE TABLE summaries_blocks (
    server_id       bigint      NOT NULL REFERENCES servers (server_id),
    signature_id    bigint      NOT NULL REFERENCES signatures (signature_id),
    interval_s      integer     NOT NULL CHECK (interval_s > 86400 AND interval_s % 86400 = 0),  -- 2, 4, … 64 days
    interval_start  timestamptz NOT NULL,                          -- aligned to interval_s (UTC)
    count           bigint      NOT NULL,
    partial         boolean     NOT NULL DEFAULT false,
    outcomes        jsonb       NOT NULL DEFAULT '{}',
    metrics         jsonb       NOT NULL DEFAULT '{}',             -- as summaries_l2.metrics
    -- daily rows merged into this one
    source_rows     bigint      NOT NULL DEFAULT 0,
    upper_percentiles jsonb     NOT NULL DEFAULT '{}',             -- as summaries_l2.upper_percentiles (below)
    PRIMARY KEY (server_id, signature_id, interval_s, interval_start)
);
CREATE INDEX summaries_blocks_time ON summaries_blocks (interval_s, interval_start);

CREATE TABLE summary_sketches_blocks (
    server_id       bigint      NOT NULL,
    signature_id    bigint      NOT NULL,
    interval_s      integer     NOT NULL,
    interval_start  timestamptz NOT NULL,
    metric          text        NOT NULL,
    sketch          bytea       NOT NULL,
    PRIMARY KEY (server_id, signature_id, interval_s, interval_start, metric)
);
CREATE INDEX summary_sketches_blocks_time ON summary_sketches_blocks (interval_s, metric, interval_start);

-- Which blocks are complete, written with the rows it describes:
--   valid_from:   blocks starting before this are missing or lack days (days rolled up before
--                 this migration, or deleted by retention); their days are read from daily rows.
--   rolled_until: every daily row before this has been added to the blocks holding its day
--                 (the daily roll-up moves it along with rollup_state(86400).rolled_until).
-- A block [s, s + interval_s) is complete when valid_from <= s and s + interval_s <= rolled_until.
-- Daily rows rolled up before this migration get no blocks: valid_from starts where the daily
-- roll-up stands.
CREATE TABLE rollup_day_blocks (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    valid_from    timestamptz NOT NULL,
    rolled_until  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_day_blocks (valid_from, rolled_until)
SELECT rolled_until, rolled_until FROM rollup_state WHERE interval_s = 86400;

-- The "upper" percentiles of each timing metric of a row, {"ttfr_ns": {"p50": …, "p90": …,
-- "p95": …, "p99": …}}: the value at rank min(n−1, ⌈q·n⌉) of its sketch instead of ⌊q·(n−1)⌋
-- (collector/src/rollup.ts, upperPercentiles). Their ranks add up over any number of rows, so
-- that the highest of them bounds the merged percentile of a group of rows (the reporter's
-- top-N by a percentile reads the sketches of fewer groups). Rows written before this migration
-- have none ('{}'); the reporter then bounds as before.
ALTER TABLE summaries_l2 ADD COLUMN upper_percentiles jsonb NOT NULL DEFAULT '{}';

-- The reporter's role reads the new tables (004's default privileges cover tables this login
-- creates; a migration applied by another login needs the grant).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wiretime_reader') THEN
        GRANT SELECT ON summaries_blocks, summary_sketches_blocks, rollup_day_blocks TO wiretime_reader;
    END IF;
END
$$;
