import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startCollector, parseTokens, DEFAULT_COLLECTOR_OPTIONS, type CollectorTls } from '../collector-server.ts';
import { SummaryStore } from '../store/summary-store.ts';
import { parseDurationS, ROLLUP_AGE_HELP, ROLLUP_FLAG_OPTIONS, ROLLUP_FLAGS_HELP, rollupSettingsFromFlags, type RollupSettings } from '../rollup-flags.ts';
import { scheduleRollups, type RollupSchedule } from '../rollup-schedule.ts';

export const COLLECTOR_HELP = `Usage: wiretime collector [options]

Receives interval summaries from sensors over gRPC (wiretime.v1.IngestService) and stores
them in PostgreSQL, or in an embedded PostgreSQL (PGlite) when no database is given.

Options:
  --listen HOST:PORT     address to listen on (default ${DEFAULT_COLLECTOR_OPTIONS.listen}; port 0 picks one)
  --database URL         PostgreSQL connection string, e.g. postgres://wiretime@db/wiretime
  --data-dir DIR         embedded database directory (without --database; default: in memory)
  --tokens FILE          "SENSOR_ID TOKEN" per line: each sensor must present its token
                         (metadata "authorization: Bearer TOKEN") and can write only as itself.
                         Without it any sensor is accepted: for a closed network only.
  --tls-cert FILE        PEM certificate chain of the collector: listen with TLS
  --tls-key FILE         PEM private key of --tls-cert
  --client-ca FILE       PEM CA of sensors' client certificates (with --tls-cert): mutual TLS;
                         a certificate's subject CN is the only sensor id it may write as
  --store-timeout S      a batch not stored within S seconds ends the stream with
                         UNAVAILABLE and the sensor sends it again (default 30)
  --rollup-every AGE     roll summaries up at start and then every AGE (default 1h; 0: never,
                         e.g. when cron runs wiretime rollup); with several collectors on one
                         database one rolls up at a time. The roll-up flags:
${ROLLUP_FLAGS_HELP}  -h, --help             this help

The schema is created and upgraded at start. SIGINT/SIGTERM: stop accepting, finish the
calls in flight and the roll-up's current unit of work, close the database.

${ROLLUP_AGE_HELP}`;

/** `wiretime collector`: runs until SIGINT/SIGTERM; returns the exit code. */
export async function collectorCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        database: { type: 'string' },
        'data-dir': { type: 'string' },
        tokens: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'client-ca': { type: 'string' },
        'store-timeout': { type: 'string' },
        'rollup-every': { type: 'string' },
        ...ROLLUP_FLAG_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`wiretime collector: ${(err as Error).message}\n\n${COLLECTOR_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(COLLECTOR_HELP);
    return 0;
  }
  const log = (event: string, fields: Record<string, unknown>): void => {
    process.stderr.write(JSON.stringify({ component: 'collector', event, ...fields }) + '\n');
  };
  let tokens: Map<string, string> | null = null;
  let tls: CollectorTls | null = null;
  let store_timeout_ms = DEFAULT_COLLECTOR_OPTIONS.store_timeout_ms;
  let rollup_every_s: number;
  let rollup: RollupSettings;
  try {
    rollup_every_s = parseDurationS(v['rollup-every'] ?? '1h', 'rollup-every');
    rollup = rollupSettingsFromFlags(v);
    if (v.tokens !== undefined) tokens = parseTokens(readFileSync(v.tokens, 'utf8'), v.tokens);
    if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
    if (v['client-ca'] !== undefined && v['tls-cert'] === undefined) throw new Error('--client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)');
    if (v['tls-cert'] !== undefined) {
      tls = { cert_chain: readFileSync(v['tls-cert']), private_key: readFileSync(v['tls-key']!), client_ca: v['client-ca'] === undefined ? null : readFileSync(v['client-ca']) };
    }
    if (v['store-timeout'] !== undefined) {
      const s = Number(v['store-timeout']);
      if (!(s > 0 && s <= 3600)) throw new Error(`--store-timeout: ${JSON.stringify(v['store-timeout'])} is not a number of seconds between 0 and 3600`);
      store_timeout_ms = s * 1000;
    }
  } catch (err) {
    process.stderr.write(`wiretime collector: ${(err as Error).message}\n`);
    return 2;
  }
  if (v.database === undefined && v['data-dir'] === undefined) {
    log('warning', { message: 'no --database or --data-dir: summaries are kept in memory and lost when the collector stops' });
  }
  let store: SummaryStore;
  try {
    store = await SummaryStore.open(v.database ?? null, v['data-dir'] ?? null);
  } catch (err) {
    process.stderr.write(`wiretime collector: database: ${(err as Error).message}\n`);
    return 1;
  }
  let running;
  try {
    running = await startCollector(store, { listen: v.listen ?? DEFAULT_COLLECTOR_OPTIONS.listen, tokens, tls, store_timeout_ms }, log);
  } catch (err) {
    await store.close();
    process.stderr.write(`wiretime collector: ${(err as Error).message}\n`);
    return 1;
  }
  // The bound address on stdout, for scripts and tests that ask for port 0.
  process.stdout.write(JSON.stringify({ listening: `${(v.listen ?? DEFAULT_COLLECTOR_OPTIONS.listen).replace(/:\d+$/, '')}:${running.port}` }) + '\n');
  const rollups: RollupSchedule | null = rollup_every_s > 0 ? scheduleRollups(store.sql, rollup, rollup_every_s, log) : null;
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('draining', {});
  await Promise.all([running.close(), rollups?.stop()]);
  await store.close();
  log('stopped', { ...running.counters });
  return 0;
}
