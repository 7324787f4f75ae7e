import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeCaptureFile } from '../../sensor/src/pipeline.ts';
import type { ConnectionRecord, OutputRecord, StatisticsRecord, TransactionRecord } from '../../sensor/src/output/records.ts';

/** The corpus mirror: captures and the tshark-derived oracle tables next to them. */
export const CORPUS = join(import.meta.dirname, '..', 'fixtures', 'corpus');

export interface CorpusEntry {
  file: string;
  packets: string;
  oracle_http?: string;
  oracle_http_noreasm?: string;
  oracle_http_req?: string;
  oracle_dns?: string;
  oracle_irtt?: string;
  [key: string]: unknown;
}

export function corpusManifest(): CorpusEntry[] {
  return JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8')) as CorpusEntry[];
}

/** Rows of a tab-separated oracle table, keyed by its header. */
export function readTsv(relative: string): Record<string, string>[] {
  const path = join(CORPUS, relative);
  if (!existsSync(path)) return [];
  const [header, ...lines] = readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
  const names = header!.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

/** A decimal seconds string (tshark's "0.018341000") as integer nanoseconds, exactly. */
export function secondsToNs(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d{1,12}))?$/.exec(text.trim());
  if (m === null) throw new Error(`not a decimal number of seconds: "${text}"`);
  if ((m[3] ?? '').length > 9) throw new Error(`more than nanosecond precision: "${text}"`);
  const ns = Number(m[2]) * 1e9 + Number((m[3] ?? '').padEnd(9, '0'));
  return m[1] === '-' ? -ns : ns;
}

/** Our RFC 3339 timestamp as tshark's frame.time_epoch text ("1424218389.060281000"). */
export function epochText(rfc3339: string): string {
  const m = /^(.{19})\.(\d{9})Z$/.exec(rfc3339);
  if (m === null) throw new Error(`not an RFC 3339 nanosecond timestamp: ${rfc3339}`);
  return `${Date.parse(m[1] + 'Z') / 1000}.${m[2]}`;
}

export interface Analysis {
  transactions: TransactionRecord[];
  connections: ConnectionRecord[];
  statistics: StatisticsRecord;
}

export async function analyze(path: string): Promise<Analysis> {
  const records: OutputRecord[] = [];
  await analyzeCaptureFile(path, {}, (r) => records.push(r));
  return {
    transactions: records.filter((r): r is TransactionRecord => r.type === 'transaction'),
    connections: records.filter((r): r is ConnectionRecord => r.type === 'connection'),
    statistics: records.find((r): r is StatisticsRecord => r.type === 'statistics')!,
  };
}
