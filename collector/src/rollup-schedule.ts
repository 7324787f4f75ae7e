// Roll-ups inside the collector: one run at start, then one every `every_s` after the previous
// ended (runs never overlap). Several collectors on one database may all schedule them: the
// roll-up lock lets one work and the others stop as busy.
import type { Sql } from './store/sql.ts';
import { runRollup, type RollupReport } from './rollup.ts';
import type { RollupSettings } from './rollup-flags.ts';

export interface RollupSchedule {
  /** Stops scheduling; a run in progress stops after its current unit of work. Resolves when it has. */
  stop(): Promise<void>;
}

/**
 * Starts scheduled roll-ups over `sql` (which stays the caller's). Each run uses the wall clock
 * as `now`. A failed run is logged ('rollup_failed') and the next one tried at the next tick:
 * the collector never stops for it.
 */
export function scheduleRollups(sql: Sql, settings: RollupSettings, every_s: number,
  log: (event: string, fields: Record<string, unknown>) => void): RollupSchedule {
  if (!(every_s > 0) || !Number.isFinite(every_s)) throw new RangeError(`scheduleRollups: every_s must be > 0, got ${every_s}`);
  const abort = new AbortController();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const tick = (): void => {
    timer = null;
    running = (async () => {
      try {
        const report: RollupReport = await runRollup(sql, { ...settings, now: new Date(), signal: abort.signal });
        log('rollup', { ...report });
      } catch (err) {
        log('rollup_failed', { message: (err as Error).message });
      }
    })().finally(() => {
      running = null;
      if (!abort.signal.aborted) timer = setTimeout(tick, every_s * 1000);
    });
  };
  timer = setTimeout(tick, 0);

  return {
    async stop() {
      abort.abort();
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
