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

-- Added for the roll-up itself (the tables above are what the reporter reads):

-- Level-1 rows in time order: the roll-up walks level 1 hour by hour, and time-window scans
-- across all servers (top-N) use it too. Created on every day partition, present and future.
CREATE INDEX summaries_l1_time ON summaries_l1 (interval_start);

-- Late level-1 rows: inserted with interval_start < (3600).rolled_until (a sensor replaying its
-- spool after an outage), so not yet in the hourly rows. The next roll-up merges them into the
-- hourly (and daily) rows and deletes their entries here in the same transaction. Filled by the
-- trigger below, in the ingest transaction, whatever code inserts the rows.
CREATE TABLE rollup_late_l1 (
    server_id       bigint      NOT NULL,
    signature_id    bigint      NOT NULL,
    interval_start  timestamptz NOT NULL,
    sensor_id       text        NOT NULL,
    interval_s      integer     NOT NULL,
    noted_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, signature_id, interval_start, sensor_id, interval_s)
);

-- Reads rolled_until FOR SHARE: the roll-up holds that row FOR UPDATE while it reads and merges
-- level 1 and advances rolled_until, so an insert either commits before the roll-up reads (and
-- is merged by it) or sees the advanced rolled_until (and is noted here). A statement trigger
-- with a transition table: one lookup per INSERT statement, not per row; rows skipped by
-- ON CONFLICT DO NOTHING are not in new_rows.
CREATE FUNCTION wiretime_note_late_l1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz;
BEGIN
    SELECT rolled_until INTO until FROM rollup_state WHERE interval_s = 3600 FOR SHARE;
    IF until IS NOT NULL AND until > '-infinity' THEN
        INSERT INTO rollup_late_l1 (server_id, signature_id, interval_start, sensor_id, interval_s)
        SELECT server_id, signature_id, interval_start, sensor_id, interval_s FROM new_rows
        WHERE interval_start < until
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER summaries_l1_note_late AFTER INSERT ON summaries_l1
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wiretime_note_late_l1();
