import { sensorCommand, SENSOR_HELP } from '../sensor/src/cli/sensor-command.ts';

const HELP = `wiretime — passive application response-time monitor

Usage: wiretime <command> [options]

Commands:
  sensor     read a capture file, cut it into timed transactions (wiretime sensor --help)

Run 'wiretime <command> --help' for a command's options.
`;

/** Dispatches a subcommand; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sensor':
      return sensorCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      if (rest[0] === 'sensor') process.stdout.write(SENSOR_HELP);
      else process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`wiretime: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}
