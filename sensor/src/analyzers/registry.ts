import type { Analyzer } from './analyzer.ts';
import { dnsAnalyzer } from './dns/dns-analyzer.ts';
import { genericTcpAnalyzer } from './generic-tcp/generic-tcp-analyzer.ts';
import { httpAnalyzer } from './http/http-analyzer.ts';

/**
 * Every analyzer, in probe order. The generic TCP analyzer is the fallback for TCP
 * flows no other analyzer recognises and is never probed.
 */
export const ANALYZERS: readonly Analyzer[] = [httpAnalyzer, dnsAnalyzer];
export const FALLBACK_TCP: Analyzer = genericTcpAnalyzer;

export function analyzerById(id: string): Analyzer | undefined {
  if (id === FALLBACK_TCP.id) return FALLBACK_TCP;
  return ANALYZERS.find((a) => a.id === id);
}
