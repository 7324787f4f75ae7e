import type { DecodedPacket } from '../decode/decoded-packet.ts';

/** Something that keeps per-flow columns sized like the flow table's slots. */
export interface SlotColumns {
  /** grow every column to `capacity` slots, keeping slots [0, old capacity) */
  resize(capacity: number): void;
}

export interface FlowTableOptions {
  /** most flows tracked at once; when full the least recently seen flow is evicted (counted) */
  max_flows?: number;
  /** slots allocated at start; columns grow by doubling up to max_flows */
  initial_slots?: number;
}

/**
 * The flow table: a symmetric 5-tuple → slot index, written by hand because no
 * library offers an allocation-free numeric hash of a 5-tuple (a string-keyed Map
 * costs 4× the time and memory per flow). Open addressing with linear probing over
 * an Int32Array index, keys in typed-array columns, and an intrusive LRU list (by
 * last packet seen) for idle expiry and eviction.
 *
 * A flow's side A is the source of its first packet; `lookup` tells through
 * `direction` whether the packet travels A→B (0) or B→A (1). Per-flow state of the
 * later stages lives in their own columns indexed by slot; they register with
 * `addColumns` to grow with the table.
 */
export class FlowTable {
  readonly max_flows: number;
  capacity: number;
  count = 0;
  /** direction of the packet last looked up or inserted: 0 A→B, 1 B→A */
  direction = 0;

  created = 0;
  evicted = 0;
  expired = 0;
  closed = 0;
  peak = 0;

  private ipver: Uint8Array;
  private proto: Uint8Array;
  /** 8 words per slot: A0..A3, B0..B3 */
  private addr: Uint32Array;
  /** 2 per slot: port A, port B */
  private ports: Uint16Array;
  private hashes: Uint32Array;
  /** capture time of the last packet, seconds since the epoch */
  last_seen_s: Float64Array;
  private lru_prev: Int32Array;
  private lru_next: Int32Array;
  private lru_head = -1;
  private lru_tail = -1;
  private index: Int32Array;
  private index_mask: number;
  private free: Int32Array;
  private free_top = 0;
  private readonly columns: SlotColumns[] = [];

  constructor(options: FlowTableOptions = {}) {
    this.max_flows = options.max_flows ?? 1_000_000;
    this.capacity = Math.min(this.max_flows, options.initial_slots ?? 4096);
    const c = this.capacity;
    this.ipver = new Uint8Array(c);
    this.proto = new Uint8Array(c);
    this.addr = new Uint32Array(c * 8);
    this.ports = new Uint16Array(c * 2);
    this.hashes = new Uint32Array(c);
    this.last_seen_s = new Float64Array(c);
    this.lru_prev = new Int32Array(c);
    this.lru_next = new Int32Array(c);
    this.index = new Int32Array(indexSize(c));
    this.index_mask = this.index.length - 1;
    this.free = new Int32Array(c);
    this.pushFreeRange(0, c);
  }

  addColumns(columns: SlotColumns): void {
    columns.resize(this.capacity);
    this.columns.push(columns);
  }

  /** Finds the flow of `pkt` (either direction); sets `direction`. Returns the slot or -1. */
  lookup(pkt: DecodedPacket): number {
    const h = hashPacket(pkt);
    const index = this.index;
    const mask = this.index_mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = index[i]!;
      if (e === 0) return -1;
      const slot = e - 1;
      if (this.hashes[slot] === h && this.ipver[slot] === pkt.ip_version && this.proto[slot] === pkt.transport) {
        const dir = this.matchDirection(slot, pkt);
        if (dir >= 0) {
          this.direction = dir;
          return slot;
        }
      }
    }
  }

  /**
   * Adds the flow of `pkt` with its source as side A. When the table is full the
   * least recently seen flow is evicted first: `on_evict(slot)` must finish it
   * before the slot is reused.
   */
  insert(pkt: DecodedPacket, now_s: number, on_evict: (slot: number) => void): number {
    if (this.free_top === 0) {
      if (this.capacity < this.max_flows) this.grow();
      else {
        const victim = this.lru_head;
        this.evicted++;
        on_evict(victim);
        this.remove(victim);
      }
    }
    const slot = this.free[--this.free_top]!;
    const h = hashPacket(pkt);
    this.hashes[slot] = h;
    this.ipver[slot] = pkt.ip_version;
    this.proto[slot] = pkt.transport;
    const a = slot * 8;
    const addr = this.addr;
    addr[a] = pkt.src0; addr[a + 1] = pkt.src1; addr[a + 2] = pkt.src2; addr[a + 3] = pkt.src3;
    addr[a + 4] = pkt.dst0; addr[a + 5] = pkt.dst1; addr[a + 6] = pkt.dst2; addr[a + 7] = pkt.dst3;
    this.ports[slot * 2] = pkt.src_port;
    this.ports[slot * 2 + 1] = pkt.dst_port;
    this.placeInIndex(slot, h);
    this.last_seen_s[slot] = now_s;
    this.lruAppend(slot);
    this.direction = 0;
    this.count++;
    this.created++;
    if (this.count > this.peak) this.peak = this.count;
    return slot;
  }

  /** Marks the flow as seen at `now_s` (moves it to the young end of the LRU list). */
  touch(slot: number, now_s: number): void {
    // Capture time can step backwards a little; keep the latest.
    if (now_s > this.last_seen_s[slot]!) this.last_seen_s[slot] = now_s;
    if (slot !== this.lru_tail) {
      this.lruUnlink(slot);
      this.lruAppend(slot);
    }
  }

  /** The least recently seen flow, or -1 when empty. */
  oldest(): number {
    return this.lru_head;
  }

  remove(slot: number): void {
    this.removeFromIndex(slot);
    this.lruUnlink(slot);
    this.free[this.free_top++] = slot;
    this.count--;
  }

  /** Every live slot, oldest first (for the flush at end of capture). */
  slotsOldestFirst(): number[] {
    const out: number[] = [];
    for (let s = this.lru_head; s !== -1; s = this.lru_next[s]!) out.push(s);
    return out;
  }

  // --- key access for the output stage ---
  ipVersion(slot: number): number { return this.ipver[slot]!; }
  transport(slot: number): number { return this.proto[slot]!; }
  /** port of side 0 (A) or 1 (B) */
  port(slot: number, side: number): number { return this.ports[slot * 2 + side]!; }
  /** the four address words of side 0 (A) or 1 (B) */
  addressWords(slot: number, side: number): [number, number, number, number] {
    const a = slot * 8 + side * 4;
    return [this.addr[a]!, this.addr[a + 1]!, this.addr[a + 2]!, this.addr[a + 3]!];
  }

  /** bytes held by the table's own columns */
  bytes(): number {
    return this.capacity * (1 + 1 + 32 + 4 + 4 + 8 + 4 + 4 + 4) + this.index.length * 4;
  }

  private matchDirection(slot: number, pkt: DecodedPacket): number {
    const a = slot * 8;
    const addr = this.addr;
    const pa = this.ports[slot * 2]!;
    const pb = this.ports[slot * 2 + 1]!;
    if (pkt.src_port === pa && pkt.dst_port === pb &&
        addr[a] === pkt.src0 && addr[a + 1] === pkt.src1 && addr[a + 2] === pkt.src2 && addr[a + 3] === pkt.src3 &&
        addr[a + 4] === pkt.dst0 && addr[a + 5] === pkt.dst1 && addr[a + 6] === pkt.dst2 && addr[a + 7] === pkt.dst3) return 0;
    if (pkt.src_port === pb && pkt.dst_port === pa &&
        addr[a + 4] === pkt.src0 && addr[a + 5] === pkt.src1 && addr[a + 6] === pkt.src2 && addr[a + 7] === pkt.src3 &&
        addr[a] === pkt.dst0 && addr[a + 1] === pkt.dst1 && addr[a + 2] === pkt.dst2 && addr[a + 3] === pkt.dst3) return 1;
    return -1;
  }

  private placeInIndex(slot: number, h: number): void {
    const index = this.index;
    const mask = this.index_mask;
    let i = h & mask;
    while (index[i] !== 0) i = (i + 1) & mask;
    index[i] = slot + 1;
  }

  /** Linear-probing deletion by backward shift (no tombstones, so probes stay short under churn). */
  private removeFromIndex(slot: number): void {
    const index = this.index;
    const mask = this.index_mask;
    let i = this.hashes[slot]! & mask;
    while (index[i] !== slot + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = index[j]!;
      if (e === 0) break;
      const home = this.hashes[e - 1]! & mask;
      // Move e back into the hole at i when its home position is not in (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        index[i] = e;
        i = j;
      }
    }
    index[i] = 0;
  }

  private lruAppend(slot: number): void {
    this.lru_prev[slot] = this.lru_tail;
    this.lru_next[slot] = -1;
    if (this.lru_tail !== -1) this.lru_next[this.lru_tail] = slot;
    else this.lru_head = slot;
    this.lru_tail = slot;
  }

  private lruUnlink(slot: number): void {
    const p = this.lru_prev[slot]!;
    const n = this.lru_next[slot]!;
    if (p !== -1) this.lru_next[p] = n;
    else this.lru_head = n;
    if (n !== -1) this.lru_prev[n] = p;
    else this.lru_tail = p;
  }

  private pushFreeRange(from: number, to: number): void {
    // Lowest slots first out of the stack.
    for (let s = to - 1; s >= from; s--) this.free[this.free_top++] = s;
  }

  private grow(): void {
    const old = this.capacity;
    const c = Math.min(this.max_flows, old * 2);
    this.capacity = c;
    this.ipver = growU8(this.ipver, c);
    this.proto = growU8(this.proto, c);
    const addr = new Uint32Array(c * 8); addr.set(this.addr); this.addr = addr;
    const ports = new Uint16Array(c * 2); ports.set(this.ports); this.ports = ports;
    const hashes = new Uint32Array(c); hashes.set(this.hashes); this.hashes = hashes;
    const seen = new Float64Array(c); seen.set(this.last_seen_s); this.last_seen_s = seen;
    const prev = new Int32Array(c); prev.set(this.lru_prev); this.lru_prev = prev;
    const next = new Int32Array(c); next.set(this.lru_next); this.lru_next = next;
    this.free = new Int32Array(c);
    this.free_top = 0;
    this.pushFreeRange(old, c);
    this.index = new Int32Array(indexSize(c));
    this.index_mask = this.index.length - 1;
    for (let s = this.lru_head; s !== -1; s = this.lru_next[s]!) this.placeInIndex(s, this.hashes[s]!);
    for (const col of this.columns) col.resize(c);
  }
}

function indexSize(capacity: number): number {
  let n = 16;
  while (n < capacity * 2) n *= 2;
  return n;
}

function growU8(a: Uint8Array, c: number): Uint8Array {
  const b = new Uint8Array(c);
  b.set(a);
  return b;
}

/** A hash of one endpoint (address words and port), murmur3-style mixing. */
function endpointHash(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ w2, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w3, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ port, 0x27d4eb2f);
  return h ^ (h >>> 15);
}

/** Symmetric: the same for both directions of a flow (sum of the two endpoint hashes). */
export function hashPacket(pkt: DecodedPacket): number {
  const a = endpointHash(pkt.src0, pkt.src1, pkt.src2, pkt.src3, pkt.src_port);
  const b = endpointHash(pkt.dst0, pkt.dst1, pkt.dst2, pkt.dst3, pkt.dst_port);
  let h = (a + b) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) ^ pkt.transport;
  return (h ^ (h >>> 15)) >>> 0;
}
