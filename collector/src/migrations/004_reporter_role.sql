-- wiretime collector schema, version 4: the reporter's read-only role.
--
-- wiretime_reader may read every table of this schema (including tables created later, such
-- as new day partitions and the level-2 tables) and write none. It cannot log in: grant it to
-- the login the reporter (or a person with psql) uses:
--   CREATE ROLE reporter LOGIN PASSWORD '…' IN ROLE wiretime_reader;
-- or give `wiretime reporter --role wiretime_reader` a login that is a member of it.
--
-- Roles belong to the whole PostgreSQL cluster, not to one database: the role is created only
-- when it does not exist, and a collector migrating another database of the same cluster at the
-- same moment (which makes CREATE ROLE fail with duplicate_object or unique_violation) is not
-- an error. A collector whose login may not create roles (no CREATEROLE) skips that step with a
-- NOTICE; a superuser can create the role and run this file's grants later (docs/sql.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wiretime_reader') THEN
        BEGIN
            CREATE ROLE wiretime_reader NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'wiretime: role wiretime_reader not created (this login may not create roles); see docs/sql.md';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wiretime_reader') THEN
        GRANT USAGE ON SCHEMA public TO wiretime_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO wiretime_reader;
        -- tables this login creates later (day partitions, later migrations)
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO wiretime_reader;
    END IF;
END
$$;
