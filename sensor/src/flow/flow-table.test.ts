/**
 * The flow table on its own: symmetric lookup, address families, growth, deletion by
 * backward shift under collisions, LRU order and eviction. Packets are DecodedPacket
 * structs filled by hand (the table reads only addresses, ports, ip_version, transport).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DecodedPacket, IpProto } from '../decode/decoded-packet.ts';
import { FlowTable, hashPacket } from './flow-table.ts';
import { prng } from '../../../test/support/prng.ts';

interface Tuple {
  v?: 4 | 6;
  proto?: number;
  src: [number, number, number, number] | number;
  dst: [number, number, number, number] | number;
  sport: number;
  dport: number;
}

function packet(t: Tuple): DecodedPacket {
  const p = new DecodedPacket();
  p.ip_version = t.v ?? 4;
  p.transport = t.proto ?? IpProto.TCP;
  const s = typeof t.src === 'number' ? [t.src, 0, 0, 0] : t.src;
  const d = typeof t.dst === 'number' ? [t.dst, 0, 0, 0] : t.dst;
  [p.src0, p.src1, p.src2, p.src3] = s as [number, number, number, number];
  [p.dst0, p.dst1, p.dst2, p.dst3] = d as [number, number, number, number];
  p.src_port = t.sport;
  p.dst_port = t.dport;
  return p;
}

function reverse(t: Tuple): Tuple {
  return { ...t, src: t.dst, dst: t.src, sport: t.dport, dport: t.sport };
}

const A = 0x0a000001; // 10.0.0.1
const B = 0x0a000002; // 10.0.0.2
const noEvict = (): void => assert.fail('nothing should be evicted');


describe('FlowTable', () => {
  test('lookup is symmetric: both directions find the slot; direction 0 for A→B, 1 for B→A', () => {
    const table = new FlowTable();
    const ab: Tuple = { src: A, dst: B, sport: 40000, dport: 80 };
    assert.equal(table.lookup(packet(ab)), -1);
    const slot = table.insert(packet(ab), 100, noEvict);
    assert.equal(table.direction, 0);
    assert.equal(table.lookup(packet(reverse(ab))), slot);
    assert.equal(table.direction, 1);
    assert.equal(table.lookup(packet(ab)), slot);
    assert.equal(table.direction, 0);
    assert.equal(hashPacket(packet(ab)), hashPacket(packet(reverse(ab))));
    // side A is the source of the first packet
    assert.equal(table.port(slot, 0), 40000);
    assert.equal(table.port(slot, 1), 80);
    assert.deepEqual(table.addressWords(slot, 0), [A, 0, 0, 0]);
    assert.deepEqual(table.addressWords(slot, 1), [B, 0, 0, 0]);
    // other tuples are not this flow: another port, the same ports with one address changed, UDP
    assert.equal(table.lookup(packet({ ...ab, sport: 40001 })), -1);
    assert.equal(table.lookup(packet({ ...ab, dst: A, src: B })), -1); // ports kept, addresses swapped
    assert.equal(table.lookup(packet({ ...ab, proto: IpProto.UDP })), -1);
    assert.equal(table.count, 1);
    assert.equal(table.created, 1);
  });

  test('IPv4 and IPv6 flows with the same address words and ports do not collide', () => {
    const table = new FlowTable();
    // IPv6 0a00:0001:: and 0a00:0002:: have the same four words as IPv4 10.0.0.1 / 10.0.0.2
    const v4: Tuple = { v: 4, src: A, dst: B, sport: 1234, dport: 53, proto: IpProto.UDP };
    const v6: Tuple = { ...v4, v: 6, src: [A, 0, 0, 0], dst: [B, 0, 0, 0] };
    assert.equal(hashPacket(packet(v4)), hashPacket(packet(v6))); // same hash: only the version tells them apart
    const s4 = table.insert(packet(v4), 1, noEvict);
    assert.equal(table.lookup(packet(v6)), -1);
    const s6 = table.insert(packet(v6), 1, noEvict);
    assert.notEqual(s4, s6);
    assert.equal(table.lookup(packet(reverse(v6))), s6);
    assert.equal(table.direction, 1);
    assert.equal(table.lookup(packet(v4)), s4);
    assert.equal(table.ipVersion(s4), 4);
    assert.equal(table.ipVersion(s6), 6);
    assert.equal(table.count, 2);
  });

  test('growth from 2 initial slots to 1000 flows keeps every flow findable, in both directions', () => {
    const table = new FlowTable({ initial_slots: 2, max_flows: 100_000 });
    assert.equal(table.capacity, 2);
    const resized: number[] = [];
    table.addColumns({ resize: (c) => resized.push(c) });
    const tuples: Tuple[] = [];
    const slots: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t: Tuple = { src: A + (i % 7), dst: B, sport: 1024 + i, dport: 443 };
      tuples.push(t);
      slots.push(table.insert(packet(t), i, noEvict));
    }
    assert.equal(table.count, 1000);
    assert.equal(new Set(slots).size, 1000);
    // 2 → 4 → 8 → … → 1024, each growth told to the registered columns
    assert.equal(table.capacity, 1024);
    assert.deepEqual(resized, [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
    tuples.forEach((t, i) => {
      assert.equal(table.lookup(packet(t)), slots[i], `flow ${i}`);
      assert.equal(table.lookup(packet(reverse(t))), slots[i], `flow ${i} reversed`);
    });
    // the LRU order survived the growth
    assert.deepEqual(table.slotsOldestFirst(), slots);
    assert.equal(table.evicted, 0);
  });

  test('removal by backward shift under heavy collisions keeps the other flows findable', () => {
    // 64 slots → an index of 128 entries (mask 127). Pick 48 flows whose home position is one
    // of 126, 127, 0, 1 so that they form one long probe run that wraps around the index end.
    const homes = new Set([126, 127, 0, 1]);
    const chosen: Tuple[] = [];
    for (let port = 1; chosen.length < 48; port++) {
      const t: Tuple = { src: A, dst: B, sport: port, dport: 9 };
      if (homes.has(hashPacket(packet(t)) & 127)) chosen.push(t);
    }
    for (let seed = 1; seed <= 20; seed++) {
      const table = new FlowTable({ initial_slots: 64, max_flows: 64 });
      const slot = new Map<Tuple, number>();
      for (const t of chosen) slot.set(t, table.insert(packet(t), 0, noEvict));
      // remove half in a random order (Fisher–Yates with a seeded PRNG)
      const rnd = prng(seed);
      const order = [...chosen];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const removed = order.slice(0, 24);
      const kept = order.slice(24);
      for (const t of removed) {
        assert.equal(table.lookup(packet(t)), slot.get(t));
        table.remove(slot.get(t)!);
      }
      assert.equal(table.count, 24);
      for (const t of kept) {
        assert.equal(table.lookup(packet(t)), slot.get(t), `seed ${seed}: kept flow port ${t.sport}`);
        assert.equal(table.lookup(packet(reverse(t))), slot.get(t), `seed ${seed}: kept flow port ${t.sport} reversed`);
      }
      for (const t of removed) assert.equal(table.lookup(packet(t)), -1, `seed ${seed}: removed flow port ${t.sport}`);
      // the freed slots are reused and everything is still found
      for (const t of removed) slot.set(t, table.insert(packet(t), 1, noEvict));
      assert.equal(table.count, 48);
      for (const t of chosen) assert.equal(table.lookup(packet(t)), slot.get(t), `seed ${seed}: port ${t.sport} after reinsertion`);
    }
  });

  test('oldest() follows the least recently touched flow', () => {
    const table = new FlowTable();
    const a = table.insert(packet({ src: A, dst: B, sport: 1, dport: 80 }), 10, noEvict);
    const b = table.insert(packet({ src: A, dst: B, sport: 2, dport: 80 }), 11, noEvict);
    const c = table.insert(packet({ src: A, dst: B, sport: 3, dport: 80 }), 12, noEvict);
    assert.equal(table.oldest(), a);
    table.touch(a, 13);
    assert.equal(table.oldest(), b);
    assert.deepEqual(table.slotsOldestFirst(), [b, c, a]);
    table.touch(c, 14);
    assert.deepEqual(table.slotsOldestFirst(), [b, a, c]);
    table.remove(b);
    assert.equal(table.oldest(), a);
    // capture time stepping backwards keeps the latest time but still counts as a touch
    table.touch(a, 5);
    assert.equal(table.last_seen_s[a], 13);
    assert.deepEqual(table.slotsOldestFirst(), [c, a]);
    table.remove(c);
    table.remove(a);
    assert.equal(table.oldest(), -1);
    assert.equal(table.count, 0);
  });

  test('at max_flows the least recently touched flow is evicted through on_evict and counted', () => {
    const table = new FlowTable({ max_flows: 3, initial_slots: 3 });
    const t = (port: number): Tuple => ({ src: A, dst: B, sport: port, dport: 80 });
    const a = table.insert(packet(t(1)), 1, noEvict);
    const b = table.insert(packet(t(2)), 2, noEvict);
    const c = table.insert(packet(t(3)), 3, noEvict);
    table.touch(a, 4); // b is now the least recently touched
    const evicted: number[] = [];
    const d = table.insert(packet(t(4)), 5, (slot) => {
      // the victim is still in the table while it is being finished
      assert.equal(table.lookup(packet(t(2))), slot);
      evicted.push(slot);
    });
    assert.deepEqual(evicted, [b]);
    assert.equal(d, b); // the freed slot is reused
    assert.equal(table.evicted, 1);
    assert.equal(table.count, 3);
    assert.equal(table.capacity, 3);
    assert.equal(table.lookup(packet(t(2))), -1);
    assert.equal(table.lookup(packet(t(1))), a);
    assert.equal(table.lookup(packet(t(3))), c);
    assert.equal(table.lookup(packet(t(4))), d);
    assert.deepEqual(table.slotsOldestFirst(), [c, a, d]);
    // a second eviction takes c
    const e = table.insert(packet(t(5)), 6, (slot) => evicted.push(slot));
    assert.deepEqual(evicted, [b, c]);
    assert.equal(e, c);
    assert.equal(table.evicted, 2);
    assert.equal(table.created, 5);
    assert.equal(table.peak, 3);
  });
});
