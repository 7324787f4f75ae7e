import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startCollector, parseTokens, DEFAULT_COLLECTOR_OPTIONS } from '../collector-server.ts';
import { SummaryStore } from '../store/summary-store.ts';

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
  -h, --help             this help

The schema is created and upgraded at start. SIGINT/SIGTERM: stop accepting, finish the
calls in flight, close the database.
`;

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
  try {
    if (v.tokens !== undefined) tokens = parseTokens(readFileSync(v.tokens, 'utf8'), v.tokens);
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
    running = await startCollector(store, { listen: v.listen ?? DEFAULT_COLLECTOR_OPTIONS.listen, tokens }, log);
  } catch (err) {
    await store.close();
    process.stderr.write(`wiretime collector: ${(err as Error).message}\n`);
    return 1;
  }
  // The bound address on stdout, for scripts and tests that ask for port 0.
  process.stdout.write(JSON.stringify({ listening: `${(v.listen ?? DEFAULT_COLLECTOR_OPTIONS.listen).replace(/:\d+$/, '')}:${running.port}` }) + '\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('draining', {});
  await running.close();
  await store.close();
  log('stopped', { ...running.counters });
  return 0;
}
