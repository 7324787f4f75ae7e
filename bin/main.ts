import { sensorCommand, SENSOR_HELP } from '../sensor/src/cli/sensor-command.ts';

// The collector (PostgreSQL, gRPC server) loads only when asked for.
async function collector(argv: string[]): Promise<number> {
  const { collectorCommand } = await import('../collector/src/cli/collector-command.ts');
  return collectorCommand(argv);
}

// The roll-up (PostgreSQL / PGlite) loads only when asked for, like the collector.
async function rollup(argv: string[]): Promise<number> {
  const { rollupCommand } = await import('../collector/src/cli/rollup-command.ts');
  return rollupCommand(argv);
}

// The reporter (gRPC query service) and its client load only when asked for.
async function reporter(argv: string[]): Promise<number> {
  const { reporterCommand } = await import('../reporter/src/cli/reporter-command.ts');
  return reporterCommand(argv);
}

async function report(argv: string[]): Promise<number> {
  const { reportCommand } = await import('../reporter/src/cli/report-command.ts');
  return reportCommand(argv);
}

async function demo(argv: string[]): Promise<number> {
  const { demoCommand } = await import('./demo-command.ts');
  return demoCommand(argv);
}

const HELP = `wiretime — passive application response-time monitor

Usage: wiretime <command> [options]

Commands:
  demo       sensor, collector and reporter on the embedded database, fed a shipped capture (wiretime demo --help)
  sensor     read a capture file or an interface, cut it into timed transactions (wiretime sensor --help)
  collector  receive sensors' summaries over gRPC, store them in PostgreSQL (wiretime collector --help)
  rollup     merge stored summaries into hourly and daily rows, apply retention (wiretime rollup --help)
  reporter   answer queries about the stored summaries over gRPC (wiretime reporter --help)
  report     ask a reporter: sensors, signatures, series, top, compare (wiretime report --help)

Run 'wiretime <command> --help' for a command's options.
`;

/** Dispatches a subcommand; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      return demo(rest);
    case 'sensor':
      return sensorCommand(rest);
    case 'collector':
      return collector(rest);
    case 'rollup':
      return rollup(rest);
    case 'reporter':
      return reporter(rest);
    case 'report':
      return report(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      if (rest[0] === 'sensor') process.stdout.write(SENSOR_HELP);
      else if (rest[0] === 'demo') return demo(['--help']);
      else if (rest[0] === 'collector') return collector(['--help']);
      else if (rest[0] === 'rollup') return rollup(['--help']);
      else if (rest[0] === 'reporter') return reporter(['--help']);
      else if (rest[0] === 'report') return report(['--help']);
      else process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`wiretime: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}
