-- wiretime collector schema, version 3: level-2 roll-ups (DESIGN.md, Interval summaries, Level 2).
--
-- Level-1 rows (summaries_l1, one per sensor interval) older than an age are merged into hourly
-- rows (interval_s = 3600), and hourly rows older than another age into daily rows
-- (interval_s = 86400), like PasTmon's `pastmon_summarise_level_2.pl --age=32 --interval=3600`.
-- Merging combines count/sum/min/max and outcome counts, and merges the DDSketches exactly
-- (bucket counts add), so percentiles of a rolled-up row are those of all its transactions
-- within the sketch's 1% relative error.
--
-- A level-2 row merges every sensor that saw the key (sensor_id is not in the key): rolled-up
-- data answers "how did this server/signature do", not "what did sensor X see".
-- Keys keep server_id first, as level 1 does, so that Citus can distribute these tables by
-- server and co-locate them with level 1.

CREATE TABLE summaries_l2 (
    server_id       bigint      NOT NULL REFERENCES servers (server_id),
    signature_id    bigint      NOT NULL REFERENCES signatures (signature_id),
    interval_s      integer     NOT NULL CHECK (interval_s > 0),   -- 3600 or 86400
    interval_start  timestamptz NOT NULL,                          -- aligned to interval_s (UTC)
    count           bigint      NOT NULL,
    partial         boolean     NOT NULL DEFAULT false,
    outcomes        jsonb       NOT NULL DEFAULT '{}',
    metrics         jsonb       NOT NULL DEFAULT '{}',             -- same shape as summaries_l1.metrics
    -- how many rows of the finer level were merged into this one
    source_rows     bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (server_id, signature_id, interval_s, interval_start)
);
-- time-window scans across all keys (top-N, compare, retention)
CREATE INDEX summaries_l2_time ON summaries_l2 (interval_s, interval_start);

-- DDSketch of each timing metric of a level-2 row (sketches-proto bytes), as summary_sketches
-- is for level 1.
CREATE TABLE summary_sketches_l2 (
    server_id       bigint      NOT NULL,
    signature_id    bigint      NOT NULL,
    interval_s      integer     NOT NULL,
    interval_start  timestamptz NOT NULL,
    metric          text        NOT NULL,
    sketch          bytea       NOT NULL,
    PRIMARY KEY (server_id, signature_id, interval_s, interval_start, metric)
);
CREATE INDEX summary_sketches_l2_time ON summary_sketches_l2 (interval_s, metric, interval_start);

-- Progress of each level, written in the same transaction as the rows it describes, so that a
-- roll-up interrupted at any point neither loses nor double-counts when it is run again.
--   rolled_until:   every source row with interval_start < rolled_until has been merged into
--                   this level (source = level 1 for 3600, the 3600 level for 86400).
--   source_deleted_until: source rows before this were deleted after merging (NULL: none).
-- The reporter reads a window from the finest level that still holds it: level 1 from
-- (3600).source_deleted_until on, hourly rows before that, daily rows before
-- (86400).source_deleted_until.
CREATE TABLE rollup_state (
    interval_s            integer     PRIMARY KEY CHECK (interval_s > 0),
    rolled_until          timestamptz NOT NULL DEFAULT '-infinity',
    source_deleted_until  timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (interval_s) VALUES (3600), (86400);
