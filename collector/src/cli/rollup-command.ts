import { parseArgs } from 'node:util';
import { runRollup } from '../rollup.ts';
import { ROLLUP_AGE_HELP, ROLLUP_FLAG_OPTIONS, ROLLUP_FLAGS_HELP, rollupSettingsFromFlags, type RollupSettings } from '../rollup-flags.ts';
import { migrate } from '../store/migrate.ts';
import { PgSql } from '../store/pg-sql.ts';
import { PgliteSql } from '../store/pglite-sql.ts';
import type { Sql } from '../store/sql.ts';

export const ROLLUP_HELP = `Usage: wiretime rollup (--database URL | --data-dir DIR) [options]

Rolls stored interval summaries up once, by hand or from cron (the collector also does it on a
schedule, see wiretime collector --help): level-1 summaries into hourly rows, hourly rows into
daily rows (sketches merged exactly), then retention. Prints one line of JSON: what it did.
Safe to interrupt and to run again; while another roll-up works on the database it stops and
says "busy": true.

Options:
  --database URL         PostgreSQL connection string, e.g. postgres://wiretime@db/wiretime
  --data-dir DIR         embedded database directory (PGlite)
${ROLLUP_FLAGS_HELP}  -h, --help             this help

${ROLLUP_AGE_HELP}`;

/** `wiretime rollup`: one roll-up run; returns the exit code (0 done or busy, 1 failed, 2 bad usage). */
export async function rollupCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        database: { type: 'string' },
        'data-dir': { type: 'string' },
        ...ROLLUP_FLAG_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`wiretime rollup: ${(err as Error).message}\n\n${ROLLUP_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(ROLLUP_HELP);
    return 0;
  }
  if ((v.database === undefined) === (v['data-dir'] === undefined)) {
    process.stderr.write(`wiretime rollup: give exactly one of --database URL and --data-dir DIR\n\n${ROLLUP_HELP}`);
    return 2;
  }
  let settings: RollupSettings;
  try {
    settings = rollupSettingsFromFlags(v);
  } catch (err) {
    process.stderr.write(`wiretime rollup: ${(err as Error).message}\n`);
    return 2;
  }
  let sql: Sql;
  try {
    sql = v.database !== undefined ? new PgSql(v.database) : await PgliteSql.open(v['data-dir']!);
  } catch (err) {
    process.stderr.write(`wiretime rollup: database: ${(err as Error).message}\n`);
    return 1;
  }
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await migrate(sql);
    const report = await runRollup(sql, { ...settings, now: new Date(), signal: abort.signal });
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  } catch (err) {
    process.stderr.write(`wiretime rollup: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await sql.close().catch(() => {});
  }
}
