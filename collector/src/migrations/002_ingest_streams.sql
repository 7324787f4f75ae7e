-- wiretime collector schema, version 2: the idempotency key of a batch is (sensor, stream,
-- sequence). A stream is one spool's life: a sensor whose spool directory was lost or recreated
-- starts again at sequence 1 under a new random stream id, and must not have its new batches
-- acknowledged as duplicates of the old ones. Batches stored before this version keep the
-- empty stream id.
ALTER TABLE ingest_batches ADD COLUMN stream_id text NOT NULL DEFAULT '';
ALTER TABLE ingest_batches ALTER COLUMN stream_id DROP DEFAULT;
ALTER TABLE ingest_batches DROP CONSTRAINT ingest_batches_pkey;
ALTER TABLE ingest_batches ADD PRIMARY KEY (sensor_id, stream_id, sequence);
