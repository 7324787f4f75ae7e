import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseTokens } from '../../../collector/src/collector-server.ts';
import { DEFAULT_REPORTER_LISTEN, startReporter } from '../server.ts';
import { ReportStore } from '../store/report-store.ts';

export const REPORTER_HELP = `Usage: wiretime reporter [options]

Answers questions about the stored summaries over gRPC (wiretime.v1.ReportService; see
docs/api.md): sensors, servers, protocols, signatures, time series, top-N, before/after
comparisons. It only reads: every query runs in a read-only transaction.

Options:
  --listen HOST:PORT        address to listen on (default ${DEFAULT_REPORTER_LISTEN}; port 0 picks one)
  --database URL            PostgreSQL connection string, e.g. postgres://reporter@db/wiretime
                            (the connection is opened with default_transaction_read_only=on)
  --data-dir DIR            embedded database directory written by 'wiretime collector --data-dir'
                            (not while that collector runs: the embedded database has one user)
  --tokens FILE             "NAME TOKEN" per line: each client must present a token (metadata
                            "authorization: Bearer TOKEN"). Without it every caller is answered.
  --tls-cert FILE           PEM certificate chain: listen with TLS (clients use 'wiretime report --tls-ca')
  --tls-key FILE            PEM private key of --tls-cert
  --role ROLE               role taken for every query, e.g. wiretime_reader (created by the schema;
                            the login must be a member of it). Default: the login's own role.
  --statement-timeout-ms N  longest a statement may run (default 10000); longer → DEADLINE_EXCEEDED
                            (PostgreSQL only: the embedded database cannot enforce it)
  -h, --help                this help

SIGINT/SIGTERM: stop accepting, finish the calls in flight, close the database.
`;

/** `wiretime reporter`: runs until SIGINT/SIGTERM; returns the exit code. */
export async function reporterCommand(argv: string[]): Promise<number> {
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
        role: { type: 'string' },
        'statement-timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`wiretime reporter: ${(err as Error).message}\n\n${REPORTER_HELP}`);
    return 2;
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(REPORTER_HELP);
    return 0;
  }
  const fail = (message: string, code = 2): number => {
    process.stderr.write(`wiretime reporter: ${message}\n`);
    return code;
  };
  if ((v.database === undefined) === (v['data-dir'] === undefined)) return fail('give either --database URL or --data-dir DIR');
  let timeout_ms = 10_000;
  if (v['statement-timeout-ms'] !== undefined) {
    timeout_ms = Number(v['statement-timeout-ms']);
    if (!Number.isInteger(timeout_ms) || timeout_ms < 1) return fail(`--statement-timeout-ms: ${v['statement-timeout-ms']} is not a positive whole number of milliseconds`);
  }
  if (v.role !== undefined && !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(v.role)) return fail(`--role: ${JSON.stringify(v.role)} is not a role name`);
  let tokens: Map<string, string> | null = null;
  let tls: { cert_chain: Buffer; private_key: Buffer } | null = null;
  try {
    if (v.tokens !== undefined) tokens = parseTokens(readFileSync(v.tokens, 'utf8'), v.tokens);
    if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
    if (v['tls-cert'] !== undefined) tls = { cert_chain: readFileSync(v['tls-cert']), private_key: readFileSync(v['tls-key']!) };
  } catch (err) {
    return fail((err as Error).message);
  }
  const log = (event: string, fields: Record<string, unknown>): void => {
    process.stderr.write(JSON.stringify({ component: 'reporter', event, ...fields }) + '\n');
  };
  if (tokens === null) log('warning', { message: 'no --tokens: every caller is answered; for a closed network only' });
  let store: ReportStore;
  try {
    store = await ReportStore.open(v.database ?? null, v['data-dir'] ?? null, { role: v.role ?? null, statement_timeout_ms: timeout_ms });
  } catch (err) {
    return fail(`database: ${(err as Error).message}`, 1);
  }
  const listen = v.listen ?? DEFAULT_REPORTER_LISTEN;
  let running;
  try {
    running = await startReporter({ store, listen, tokens, tls }, log);
  } catch (err) {
    await store.close();
    return fail((err as Error).message, 1);
  }
  // The bound address on stdout, for scripts and tests that ask for port 0.
  process.stdout.write(JSON.stringify({ listening: `${listen.replace(/:\d+$/, '')}:${running.port}` }) + '\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('draining', {});
  await running.close();
  await store.close();
  log('stopped', {});
  return 0;
}
