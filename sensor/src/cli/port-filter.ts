import { IpProto } from '../decode/decoded-packet.ts';

/**
 * A small subset of tcpdump's filter language, enough to pick services out of a
 * capture: primitives `tcp`, `udp`, `port N`, `tcp port N`, `udp port N`,
 * `portrange N-M`, joined with `or` / `and` (`and` binds tighter), `not` before a
 * primitive. Anything else is refused with the word that was not understood.
 */
export type PortFilter = (transport: number, src_port: number, dst_port: number) => boolean;

export function parsePortFilter(expression: string): PortFilter {
  const words = expression.trim().split(/\s+/).filter((w) => w.length > 0);
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`filter "${expression}": ${what} (supported: tcp, udp, [tcp|udp] port N, portrange N-M, not, and, or)`);
  };
  const parsePort = (w: string | undefined): number => {
    const n = Number(w);
    if (w === undefined || !/^\d+$/.test(w) || n > 65535) fail(`expected a port number after "port", got "${w ?? 'end of filter'}"`);
    return n;
  };
  const primitive = (): PortFilter => {
    const w = words[i++];
    if (w === 'not' || w === '!') {
      const inner = primitive();
      return (t, s, d) => !inner(t, s, d);
    }
    let proto = 0;
    let word = w;
    if (word === 'tcp' || word === 'udp') {
      proto = word === 'tcp' ? IpProto.TCP : IpProto.UDP;
      if (words[i] !== 'port' && words[i] !== 'portrange') return (t) => t === proto;
      word = words[i++];
    }
    if (word === 'port') {
      const p = parsePort(words[i++]);
      return (t, s, d) => (proto === 0 || t === proto) && (s === p || d === p);
    }
    if (word === 'portrange') {
      const range = words[i++];
      const m = /^(\d+)-(\d+)$/.exec(range ?? '');
      if (m === null) fail(`expected N-M after "portrange", got "${range ?? 'end of filter'}"`);
      let lo = Number(m![1]), hi = Number(m![2]);
      if (lo > 65535 || hi > 65535) fail(`port range "${range}" goes past 65535`);
      if (lo > hi) [lo, hi] = [hi, lo]; // as libpcap does
      return (t, s, d) => (proto === 0 || t === proto) && ((s >= lo && s <= hi) || (d >= lo && d <= hi));
    }
    return fail(`did not understand "${w ?? 'end of filter'}"`);
  };
  const conjunction = (): PortFilter => {
    let f = primitive();
    while (words[i] === 'and' || words[i] === '&&') {
      i++;
      const a = f, b = primitive();
      f = (t, s, d) => a(t, s, d) && b(t, s, d);
    }
    return f;
  };
  if (words.length === 0) fail('empty');
  let f = conjunction();
  while (words[i] === 'or' || words[i] === '||') {
    i++;
    const a = f, b = conjunction();
    f = (t, s, d) => a(t, s, d) || b(t, s, d);
  }
  if (i < words.length) fail(`did not understand "${words[i]}"`);
  return f;
}
