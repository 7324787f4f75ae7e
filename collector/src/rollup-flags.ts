// The roll-up's command-line flags, shared by `wiretime rollup` and `wiretime collector`.
import { validateRollupOptions, type RollupOptions } from './rollup.ts';

/** Everything of RollupOptions that flags decide (the caller adds `now`). */
export type RollupSettings = Omit<RollupOptions, 'now' | 'signal'>;

/** node:util parseArgs options for the roll-up flags. */
export const ROLLUP_FLAG_OPTIONS = {
  'hourly-after': { type: 'string' },
  'daily-after': { type: 'string' },
  delete: { type: 'boolean' },
  'retention-l1': { type: 'string' },
  'retention-hourly': { type: 'string' },
  'retention-daily': { type: 'string' },
} as const;

export const ROLLUP_FLAGS_HELP = `  --hourly-after AGE     merge level-1 summaries older than AGE into hourly rows (default 2d)
  --daily-after AGE      merge hourly rows older than AGE into daily rows (default 32d)
  --delete               delete the merged source rows (level 1 once in hourly rows, hourly rows
                         once in daily rows)
  --retention-l1 AGE     drop level-1 day partitions older than AGE (default keep)
  --retention-hourly AGE delete hourly rows older than AGE (default keep)
  --retention-daily AGE  delete daily rows older than AGE (default keep)
`;

export const ROLLUP_AGE_HELP = `AGE is a number with a unit: 90s, 30m, 1h, 2d, 5w (a bare number is seconds); "keep" for a
retention. Nothing is removed before it is rolled up: retention waits for the roll-up of what
it would drop.
`;

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "2d" → 172800. Throws an Error naming the flag on anything else. */
export function parseDurationS(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(text.trim());
  if (!m) throw new Error(`--${flag} ${JSON.stringify(text)}: expected a number with a unit (s, m, h, d, w), e.g. 2d`);
  return Number(m[1]) * UNIT_S[m[2] || 's']!;
}

function retention(text: string | undefined, flag: string): number | null {
  if (text === undefined || text === 'keep') return null;
  return parseDurationS(text, flag);
}

const FLAG_OF: Record<string, string> = {
  hourly_after_s: '--hourly-after', daily_after_s: '--daily-after', retention_l1_s: '--retention-l1',
  retention_hourly_s: '--retention-hourly', retention_daily_s: '--retention-daily',
};

/** Roll-up settings from parsed flags; throws an Error that speaks of the flags when they are bad. */
export function rollupSettingsFromFlags(v: { [K in keyof typeof ROLLUP_FLAG_OPTIONS]?: K extends 'delete' ? boolean : string }): RollupSettings {
  const s: RollupSettings = {
    hourly_after_s: parseDurationS(v['hourly-after'] ?? '2d', 'hourly-after'),
    daily_after_s: parseDurationS(v['daily-after'] ?? '32d', 'daily-after'),
    delete_source: v.delete === true,
    retention_l1_s: retention(v['retention-l1'], 'retention-l1'),
    retention_hourly_s: retention(v['retention-hourly'], 'retention-hourly'),
    retention_daily_s: retention(v['retention-daily'], 'retention-daily'),
  };
  try {
    validateRollupOptions({ ...s, now: new Date(0) });
  } catch (err) {
    throw new Error((err as Error).message.replace(/^rollup: /, '').replace(/\b[a-z0-9_]+_s\b/g, (name) => FLAG_OF[name] ?? name));
  }
  return s;
}
