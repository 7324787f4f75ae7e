import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CaptureError, LinkType, type PacketSink } from './packet-source.ts';
import { readCaptureFile, type CaptureFileSummary, type ReadCaptureOptions } from './pcap-file-source.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(REPO, 'test/fixtures/corpus');
/** The shared real-capture corpus, beside the repository (on CI too). */
const CORPUS = FIXTURES;

interface Packet {
  ts_sec: number;
  ts_nsec: number;
  caplen: number;
  wirelen: number;
  linktype: number;
  data: Buffer;
}

async function collect(path: string, options?: ReadCaptureOptions): Promise<{ summary: CaptureFileSummary; packets: Packet[] }> {
  const packets: Packet[] = [];
  const sink: PacketSink = {
    onPacket(buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec) {
      packets.push({ ts_sec, ts_nsec, caplen, wirelen, linktype, data: Buffer.from(buf.subarray(offset, offset + caplen)) });
    },
  };
  const summary = await readCaptureFile(path, sink, options);
  return { summary, packets };
}

const fixture = (name: string): string => join(FIXTURES, name);
const timesOf = (packets: Packet[]): Array<[number, number]> => packets.map((p) => [p.ts_sec, p.ts_nsec]);
/** Exact difference in nanoseconds (small enough here to be exact in a double). */
const deltaNs = (a: Packet, b: Packet): number => (b.ts_sec - a.ts_sec) * 1e9 + (b.ts_nsec - a.ts_nsec);

let tmp = '';
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'wiretime-pcap-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function tempFile(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(tmp, name);
  await writeFile(path, bytes);
  return path;
}

/** Big-endian copy of a little-endian pcap, swapping the header fields by hand. */
function byteSwapPcap(le: Buffer): Buffer {
  const be = Buffer.from(le);
  be.writeUInt32BE(le.readUInt32LE(0), 0); // magic
  be.writeUInt16BE(le.readUInt16LE(4), 4); // version major
  be.writeUInt16BE(le.readUInt16LE(6), 6); // version minor
  for (let field = 8; field < 24; field += 4) be.writeUInt32BE(le.readUInt32LE(field), field); // zone, sigfigs, snaplen, network
  let pos = 24;
  while (pos < le.length) {
    const caplen = le.readUInt32LE(pos + 8);
    for (let field = pos; field < pos + 16; field += 4) be.writeUInt32BE(le.readUInt32LE(field), field);
    pos += 16 + caplen;
  }
  return be;
}

describe('pcap', () => {
  test('microsecond pcap: packetbeat dns_google_com.pcap', async () => {
    const { summary, packets } = await collect(fixture('packetbeat/tests/system/pcaps/dns_google_com.pcap'));
    assert.deepEqual(
      { ...summary, error: summary.error?.message ?? null },
      { format: 'pcap', packets: 2, bytes_read: 24 + 2 * 16 + 70 + 326, interfaces: 1, error: null },
    );
    // packetbeat test_0032_dns.py test_A: event.start 2015-08-27T08:00:55.638957Z, event.end 2015-08-27T08:00:55.700739Z.
    const epoch_s = Date.UTC(2015, 7, 27, 8, 0, 55) / 1000;
    assert.deepEqual(timesOf(packets), [[epoch_s, 638_957_000], [epoch_s, 700_739_000]]);
    // tshark 4.0.17: frame.len / frame.cap_len 70/70 and 326/326.
    assert.deepEqual(packets.map((p) => [p.wirelen, p.caplen, p.linktype]), [[70, 70, LinkType.ETHERNET], [326, 326, LinkType.ETHERNET]]);
  });

  test('nanosecond pcap: tcpdump tcp-handshake-nano.pcap', async () => {
    const { summary, packets } = await collect(fixture('tcpdump/tests/tcp-handshake-nano.pcap'));
    assert.equal(summary.error, null);
    assert.equal(summary.packets, 3);
    assert.ok(packets.every((p) => p.linktype === LinkType.LINUX_SLL));
    // tcpdump tests/tcp-handshake-nano.out: 17:16:09.924505488 (2014-12-09, UTC) for the SYN.
    assert.deepEqual(timesOf(packets)[0], [Date.UTC(2014, 11, 9, 17, 16, 9) / 1000, 924_505_488]);
    // tcpdump tests/tcp-handshake-nano-ttt.out: SYN -> SYN/ACK 0.127521774 s, SYN/ACK -> ACK 0.000087895 s.
    assert.equal(deltaNs(packets[0]!, packets[1]!), 127_521_774);
    assert.equal(deltaNs(packets[1]!, packets[2]!), 87_895);
  });

  test('big-endian pcap (micro and nano) reads like its little-endian original', async () => {
    for (const name of ['tcpdump/tests/tcp-handshake-nano.pcap', 'packetbeat/tests/system/pcaps/dns_google_com.pcap']) {
      const le = readFileSync(fixture(name));
      const be = byteSwapPcap(le);
      assert.notDeepEqual(be.subarray(0, 4), le.subarray(0, 4));
      const swapped = await collect(await tempFile(`be-${name.replaceAll('/', '-')}`, be));
      const original = await collect(fixture(name));
      assert.equal(swapped.summary.error, null);
      assert.deepEqual(swapped.packets, original.packets);
      assert.equal(swapped.summary.bytes_read, le.length);
    }
  });

  test('a sub-second field of 1e9 or more is carried into the seconds (timestamp_invalid_nano.pcap)', async () => {
    const { summary, packets } = await collect(fixture('tcpdump/tests/timestamp_invalid_nano.pcap'));
    assert.equal(summary.error, null);
    // Raw fields (sec, nsec) in the file: (1418145369, 0x3b9ac9ff), (1418145370, 0x3b9aca00 = 10^9),
    // (1418145370, 0x80000000 = 2147483648); tcpdump's .out flags the last two "(invalid ns)".
    // tshark 4.0.17 keeps the raw field (prints 1418145370.1000000000) but its own arithmetic,
    // frame.time_delta = 1.000000001 s for packet 2, is the carried value below. For packet 3 it
    // prints -1418145370.2147483648: wiretap holds nanoseconds in a signed 32-bit int, which
    // wraps; we read the field unsigned, as the pcap draft defines it.
    assert.deepEqual(timesOf(packets), [
      [1418145369, 999_999_999],
      [1418145371, 0],
      [1418145372, 147_483_648],
    ]);
  });

  test('a packet truncated at the IP layer is still a whole record (peafowl truncated_tcp.pcap)', async () => {
    const { summary, packets } = await collect(fixture('peafowl/test/pcaps/L3/truncated_tcp.pcap'));
    assert.equal(summary.error, null);
    // MANIFEST (capinfos): 1 packet; tshark 4.0.17: 1139698883.483915000, 62/62 bytes.
    assert.deepEqual(packets.map((p) => [p.ts_sec, p.ts_nsec, p.wirelen, p.caplen]), [[1139698883, 483_915_000, 62, 62]]);
  });

  test('an absurd captured length is damage, after the packets before it (peafowl imap.cap)', async () => {
    const path = fixture('peafowl/test/pcaps/imap.cap');
    const { summary } = await collect(path);
    // capinfos/tshark 4.0.17: 8 packets, then "File has 1358954496-byte packet". The 9th record
    // starts at 24 + 8 * 16 + (74 + 60 + 54 + 135 + 54 + 72 + 184 + 89) = 874 (tshark cap_len).
    assert.equal(summary.packets, 8);
    assert.ok(summary.error instanceof CaptureError);
    assert.equal(summary.error.file, path);
    assert.equal(summary.error.offset, 874);
    assert.match(summary.error.reason, /1358954496/);
    assert.equal(summary.bytes_read, 874);
  });
});

describe('pcapng', () => {
  test('little- and big-endian sections: gopacket test001', async () => {
    const le = await collect(fixture('gopacket/pcapgo/tests/le/test001.pcapng'));
    const be = await collect(fixture('gopacket/pcapgo/tests/be/test001.pcapng'));
    for (const { summary, packets } of [le, be]) {
      assert.deepEqual(
        { ...summary, error: summary.error?.message ?? null },
        { format: 'pcapng', packets: 4, bytes_read: 1596, interfaces: 1, error: null },
      );
      // gopacket pcapgo/ngread_test.go test001: 4 packets, time.Unix(0, 0), LinkTypeEthernet.
      assert.deepEqual(timesOf(packets), [[0, 0], [0, 0], [0, 0], [0, 0]]);
      assert.ok(packets.every((p) => p.linktype === LinkType.ETHERNET));
      // tshark 4.0.17: frame.len = frame.cap_len = 314, 342, 314, 342.
      assert.deepEqual(packets.map((p) => [p.wirelen, p.caplen]), [[314, 314], [342, 342], [314, 314], [342, 342]]);
    }
    assert.deepEqual(be.packets, le.packets);
  });

  test('multi-interface file with per-interface if_tsresol (zeek pcapng-multi-interface)', async () => {
    const { summary, packets } = await collect(fixture('zeek/testing/btest/Traces/pcapng-multi-interface.pcapng'));
    assert.equal(summary.error, null);
    assert.equal(summary.interfaces, 2);
    // tshark 4.0.17 frame.time_epoch, frame.len, frame.cap_len (interface 0: ns, interface 1: µs).
    assert.deepEqual(packets.map((p) => [p.ts_sec, p.ts_nsec, p.wirelen, p.caplen, p.linktype]), [
      [1767663089, 500_330_493, 96, 96, 1],
      [1767663089, 514_291_940, 214, 214, 1],
      [1767663437, 111_897_000, 70, 70, 1],
      [1767663437, 126_460_000, 166, 166, 1],
      [1767663437, 128_303_000, 70, 70, 1],
      [1767663437, 140_942_000, 182, 182, 1],
    ]);
  });

  test('nanosecond timestamps beyond 2^53 units convert exactly (nDPI mysql.pcapng)', async () => {
    const { summary, packets } = await collect(fixture('ndpi/tests/cfgs/default/pcap/mysql.pcapng'));
    assert.equal(summary.error, null);
    assert.equal(summary.packets, 41); // MANIFEST
    // tshark 4.0.17: first and last frame.time_epoch / frame.len.
    assert.deepEqual([packets[0]!.ts_sec, packets[0]!.ts_nsec, packets[0]!.wirelen], [1705960164, 821_097_620, 74]);
    assert.deepEqual([packets[40]!.ts_sec, packets[40]!.ts_nsec, packets[40]!.wirelen], [1705961447, 627_544_665, 66]);
  });

  test('empty pcapng (SHB + IDB): no packets, no error', async () => {
    const { summary } = await collect(fixture('tcpdump/tests/empty.pcapng'));
    assert.deepEqual(
      { ...summary, error: summary.error?.message ?? null },
      { format: 'pcapng', packets: 0, bytes_read: 48, interfaces: 1, error: null },
    );
  });

  test('a section of version 2.0 stops reading with an error naming it (gopacket test901)', async () => {
    const path = fixture('gopacket/pcapgo/tests/le/test901.pcapng');
    const { summary, packets } = await collect(path);
    // gopacket: 1 packet then ErrNgVersionMismatch; tshark 4.0.17: 1 packet (1340954905.298858000,
    // 314 bytes) then "pcapng: unknown SHB version 2.0". The second SHB starts at 100 + 32 + 348 = 480.
    assert.deepEqual(packets.map((p) => [p.ts_sec, p.ts_nsec, p.wirelen]), [[1340954905, 298_858_000, 314]]);
    assert.ok(summary.error instanceof CaptureError);
    assert.equal(summary.error.file, path);
    assert.equal(summary.error.offset, 480);
    assert.match(summary.error.reason, /version 2\.0/);
    assert.ok(summary.error.message.includes(path));
    assert.equal(summary.bytes_read, 480);
  });
});

/** Hand-built pcapng: each block in the byte order of the last section header. */
class PcapngBuilder {
  readonly blocks: Buffer[] = [];
  private le = true;

  get length(): number {
    return this.blocks.reduce((n, b) => n + b.length, 0);
  }

  bytes(): Buffer {
    return Buffer.concat(this.blocks);
  }

  u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  }

  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return b;
  }

  i64(v: bigint): Buffer {
    const b = Buffer.alloc(8);
    if (this.le) b.writeBigInt64LE(v);
    else b.writeBigInt64BE(v);
    return b;
  }

  /** A block with the given body, padded to 4; lengths may be overridden to damage it. */
  block(type: number, body: Buffer, lengths: { header?: number; trailer?: number } = {}): this {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const total = 12 + padded.length;
    this.blocks.push(Buffer.concat([this.u32(type), this.u32(lengths.header ?? total), padded, this.u32(lengths.trailer ?? total)]));
    return this;
  }

  shb(little_endian: boolean, major = 1, minor = 0): this {
    this.le = little_endian;
    return this.block(0x0a0d0d0a, Buffer.concat([this.u32(0x1a2b3c4d), this.u16(major), this.u16(minor), this.i64(-1n)]));
  }

  idb(linktype: number, snaplen: number, options: Array<[code: number, value: Buffer]> = []): this {
    const opts = options.map(([code, value]) =>
      Buffer.concat([this.u16(code), this.u16(value.length), value, Buffer.alloc((4 - (value.length % 4)) % 4)]));
    return this.block(1, Buffer.concat([this.u16(linktype), this.u16(0), this.u32(snaplen), ...opts, this.u32(0)]));
  }

  epb(id: number, units: bigint, data: Buffer, wirelen = data.length): this {
    return this.block(6, Buffer.concat([this.u32(id), this.u32(Number(units >> 32n)), this.u32(Number(units & 0xffffffffn)), this.u32(data.length), this.u32(wirelen), data]));
  }

  /** Appendix A Packet Block. */
  pb(id: number, units: bigint, data: Buffer, wirelen = data.length): this {
    return this.block(2, Buffer.concat([this.u16(id), this.u16(0), this.u32(Number(units >> 32n)), this.u32(Number(units & 0xffffffffn)), this.u32(data.length), this.u32(wirelen), data]));
  }

  spb(wirelen: number, data: Buffer): this {
    return this.block(3, Buffer.concat([this.u32(wirelen), data]));
  }
}

const bytesOf = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('pcapng blocks (hand-built)', () => {
  test('SPB, obsolete PB, binary and 10^-12 resolutions, if_tsoffset, and a second big-endian section', async () => {
    const b = new PcapngBuilder().shb(true);
    // interface 0: 2^-10 s units, offset 10^9 s, snaplen 64
    b.idb(LinkType.ETHERNET, 64, [[9, Buffer.from([0x80 | 10])], [14, b.i64(1_000_000_000n)]]);
    // interface 1: 10^-12 s units, offset 1.7e9 s
    b.idb(LinkType.RAW, 0, [[9, Buffer.from([12])], [14, b.i64(1_700_000_000n)]]);
    // interface 2: default 10^-6 s, offset -3600 s
    b.idb(LinkType.LOOP, 0, [[14, b.i64(-3600n)]]);
    // interface 3: 2^-40 s units
    b.idb(LinkType.NULL, 0, [[9, Buffer.from([0x80 | 40])]]);
    b.block(5, bytesOf(20, 0)); // ISB: skipped
    b.spb(10, bytesOf(10, 0xa0)); // interface 0, no timestamp seen yet: 0
    b.epb(0, 1536n * 1024n + 512n, bytesOf(60, 0xa1)); // 1536.5 s + offset
    b.spb(100, bytesOf(64, 0xa2)); // caplen = min(100, snaplen 64, room 64); time of the EPB before
    b.epb(0, 3n, bytesOf(4, 0xa3)); // 3/1024 s = 2929687.5 ns -> floored
    b.epb(1, 123_456_789_012_345n, bytesOf(20, 0xa4)); // 123.456789012345 s (+ 1.7e9 s)
    b.pb(2, 1_700_000_000_250_000n, bytesOf(30, 0xa5), 1500); // µs, minus 3600 s
    b.epb(3, 5n * 2n ** 40n + 2n ** 39n + 1n, bytesOf(8, 0xa6)); // 5.5 s + 2^-40 s (below 1 ns)
    b.block(0x00000bad, bytesOf(9, 0xee)); // custom block: skipped
    b.block(4, Buffer.alloc(4)); // NRB: skipped
    b.shb(false); // big-endian section: interfaces start again
    b.idb(LinkType.LINUX_SLL, 0);
    b.spb(6, bytesOf(6, 0xb0)); // interface 0 of this section: no timestamp yet
    b.epb(0, 1_600_000_000_000_001n, bytesOf(12, 0xb1));
    const bytes = b.bytes();
    const { summary, packets } = await collect(await tempFile('hand-built.pcapng', bytes));

    // Expected values are worked out by hand in the comments above. tshark 4.0.17 reads these
    // bytes the same (lengths, interfaces, times) except that it shows no time for SPBs, and
    // that for 10^-12 and 2^-40 units its 64-bit remainder * 10^9 overflows: it prints
    // 1700000123.014067154 and 5.013460736, i.e. ((r * 10^9) mod 2^64) / units.
    assert.equal(summary.error, null);
    assert.deepEqual({ format: summary.format, interfaces: summary.interfaces, bytes_read: summary.bytes_read }, { format: 'pcapng', interfaces: 5, bytes_read: bytes.length });
    assert.deepEqual(packets.map((p) => [p.ts_sec, p.ts_nsec, p.caplen, p.wirelen, p.linktype, p.data[0]]), [
      [0, 0, 10, 10, LinkType.ETHERNET, 0xa0],
      [1_000_001_536, 500_000_000, 60, 60, LinkType.ETHERNET, 0xa1],
      [1_000_001_536, 500_000_000, 64, 100, LinkType.ETHERNET, 0xa2],
      [1_000_000_000, 2_929_687, 4, 4, LinkType.ETHERNET, 0xa3],
      [1_700_000_123, 456_789_012, 20, 20, LinkType.RAW, 0xa4],
      [1_699_996_400, 250_000_000, 30, 1500, LinkType.LOOP, 0xa5],
      [5, 500_000_000, 8, 8, LinkType.NULL, 0xa6],
      [0, 0, 6, 6, LinkType.LINUX_SLL, 0xb0],
      [1_600_000_000, 1_000, 12, 12, LinkType.LINUX_SLL, 0xb1],
    ]);
  });

  /** A valid section with one packet, then `damage` appended. */
  function withDamage(damage: (b: PcapngBuilder) => void): { bytes: Buffer; bad_at: number } {
    const b = new PcapngBuilder().shb(true).idb(LinkType.ETHERNET, 0).epb(0, 1_000_000n, bytesOf(40, 1));
    const bad_at = b.length;
    damage(b);
    b.epb(0, 2_000_000n, bytesOf(40, 2)); // never reached
    return { bytes: b.bytes(), bad_at };
  }

  const damages: Array<[string, (b: PcapngBuilder) => void, RegExp]> = [
    ['block length not a multiple of 4', (b) => b.block(5, bytesOf(8, 0), { header: 22, trailer: 22 }), /multiple of 4/],
    ['block length below 12', (b) => b.block(5, Buffer.alloc(0), { header: 8, trailer: 8 }), /block length 8/],
    ['trailing length mismatch', (b) => b.block(5, bytesOf(8, 0), { trailer: 24 }), /trailing length 24/],
    ['captured length beyond the block', (b) => {
      b.epb(0, 1n, bytesOf(40, 3));
      const epb = b.blocks[b.blocks.length - 1]!;
      epb.writeUInt32LE(200, 20); // caplen 200 in a block with 40 bytes of room
    }, /captured length 200/],
    ['EPB on an undefined interface', (b) => b.epb(7, 1n, bytesOf(40, 3)), /interface 7/],
    ['block length over 256 MiB', (b) => b.block(5, bytesOf(8, 0), { header: 0x7ffffff0 }), /limit/],
    ['IDB option overrunning its block', (b) => {
      b.idb(LinkType.ETHERNET, 0, [[9, Buffer.from([6])]]);
      const idb = b.blocks[b.blocks.length - 1]!;
      idb.writeUInt16LE(200, 18); // option length 200
    }, /overruns/],
  ];
  for (const [name, damage, reason] of damages) {
    test(`damage: ${name}`, async () => {
      const { bytes, bad_at } = withDamage(damage);
      const path = await tempFile(`damage-${name.replace(/\W+/g, '-')}.pcapng`, bytes);
      const { summary, packets } = await collect(path);
      assert.equal(packets.length, 1);
      assert.equal(packets[0]!.data[0], 1);
      assert.ok(summary.error instanceof CaptureError, 'an error');
      assert.equal(summary.error.offset, bad_at);
      assert.equal(summary.error.file, path);
      assert.match(summary.error.reason, reason);
      assert.equal(summary.bytes_read, bad_at);
    });
  }

  test('damage: simple packet block before any interface', async () => {
    const b = new PcapngBuilder().shb(true).spb(4, bytesOf(4, 0));
    const { summary } = await collect(await tempFile('spb-first.pcapng', b.bytes()));
    assert.equal(summary.packets, 0);
    assert.equal(summary.error?.offset, 28);
  });

  test('damage: first section of an unknown major version', async () => {
    const { summary } = await collect(await tempFile('v3.pcapng', new PcapngBuilder().shb(false, 3, 1).bytes()));
    assert.equal(summary.error?.offset, 0);
    assert.match(summary.error?.reason ?? '', /version 3\.1/);
  });

  test('pcapng minor version 2 is read as 1.0 (draft section 4.1)', async () => {
    const b = new PcapngBuilder().shb(true, 1, 2).idb(LinkType.ETHERNET, 0).epb(0, 0n, bytesOf(14, 0));
    const { summary } = await collect(await tempFile('v1.2.pcapng', b.bytes()));
    assert.equal(summary.error, null);
    assert.equal(summary.packets, 1);
  });
});

describe('files cut short and other damage', () => {
  // tshark 4.0.17 frame.cap_len of zeek get.pcap's 14 packets.
  const GET_CAPLENS = [78, 74, 66, 202, 66, 1514, 1514, 1514, 729, 66, 66, 66, 66, 66];
  const recordOffset = (index: number): number => 24 + GET_CAPLENS.slice(0, index).reduce((n, c) => n + 16 + c, 0);

  test('pcap cut in the middle of a record: whole packets delivered, then the cut record', async () => {
    const whole = readFileSync(fixture('zeek/testing/btest/Traces/http/get.pcap'));
    assert.equal(whole.length, recordOffset(14));
    const cut_record = 9; // the 10th packet
    for (const [name, cut_at] of [['body', recordOffset(cut_record) + 16 + 30], ['header', recordOffset(cut_record) + 7]] as const) {
      const path = await tempFile(`get-cut-${name}.pcap`, whole.subarray(0, cut_at));
      for (const chunk_bytes of [undefined, 64, 1000]) {
        const { summary, packets } = await collect(path, { chunk_bytes });
        assert.equal(packets.length, cut_record, `${name}, chunk ${chunk_bytes}`);
        assert.deepEqual(packets.map((p) => p.caplen), GET_CAPLENS.slice(0, cut_record));
        assert.ok(summary.error instanceof CaptureError);
        assert.equal(summary.error.offset, recordOffset(cut_record));
        assert.match(summary.error.reason, /truncated/);
        assert.equal(summary.bytes_read, recordOffset(cut_record));
      }
    }
    // Cut exactly between records: a shorter file, not a damaged one.
    const { summary } = await collect(await tempFile('get-cut-boundary.pcap', whole.subarray(0, recordOffset(cut_record))));
    assert.deepEqual([summary.packets, summary.error], [cut_record, null]);
  });

  test('pcapng cut in the middle of a block', async () => {
    // gopacket test001-be: SHB 96 + IDB 52 bytes, then EPBs of 348, 376, 348, 376 bytes.
    const whole = readFileSync(fixture('gopacket/pcapgo/tests/be/test001.pcapng'));
    const { summary } = await collect(await tempFile('test001-be-cut.pcapng', whole.subarray(0, 1000)));
    assert.equal(summary.packets, 2);
    assert.equal(summary.error?.offset, 96 + 52 + 348 + 376);
    assert.match(summary.error?.reason ?? '', /truncated/);
  });

  test('a chunk smaller than one record gives the same packets as the default', async () => {
    for (const name of ['zeek/testing/btest/Traces/http/get.pcap', 'ndpi/tests/cfgs/default/pcap/mysql.pcapng', 'zeek/testing/btest/Traces/pcapng-multi-interface.pcapng', 'gopacket/pcapgo/tests/be/test001.pcapng']) {
      const small = await collect(fixture(name), { chunk_bytes: 64 });
      const usual = await collect(fixture(name));
      assert.deepEqual(small.summary, usual.summary, name);
      assert.deepEqual(small.packets, usual.packets, name);
    }
  });

  test('random bytes: unknown magic', async () => {
    let state = 0x2545f491;
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      garbage[i] = state & 0xff;
    }
    const path = await tempFile('garbage.bin', garbage);
    const { summary } = await collect(path);
    assert.equal(summary.packets, 0);
    assert.ok(summary.error instanceof CaptureError);
    assert.equal(summary.error.offset, 0);
    assert.match(summary.error.reason, /unknown magic/);
  });

  test('empty and too-short files are damage, not exceptions', async () => {
    for (const [name, bytes, reason] of [
      ['zero.pcap', Buffer.alloc(0), /empty/],
      ['short.pcap', readFileSync(fixture('zeek/testing/btest/Traces/http/get.pcap')).subarray(0, 20), /pcap file header/],
      ['short.pcapng', readFileSync(fixture('tcpdump/tests/empty.pcapng')).subarray(0, 10), /block header/],
    ] as const) {
      const { summary } = await collect(await tempFile(name, bytes));
      assert.equal(summary.error?.offset, 0, name);
      assert.match(summary.error?.reason ?? '', reason, name);
    }
  });

  test('corrupted copies never throw and never hang', { timeout: 60_000 }, async () => {
    let state = 12345;
    const next = (): number => {
      state = (state * 1103515245 + 12345) >>> 0;
      return state;
    };
    for (const name of ['zeek/testing/btest/Traces/pcapng-multi-interface.pcapng', 'zeek/testing/btest/Traces/http/get.pcap', 'gopacket/pcapgo/tests/be/test001.pcapng']) {
      const original = readFileSync(fixture(name));
      for (let round = 0; round < 40; round++) {
        const bytes = Buffer.from(original);
        for (let flips = 0; flips < 4; flips++) bytes[8 + (next() % (bytes.length - 8))] = next() & 0xff;
        const path = await tempFile('corrupt.bin', bytes);
        const { summary } = await collect(path, { chunk_bytes: 128 });
        assert.ok(summary.bytes_read <= bytes.length);
        assert.ok(summary.error === null || summary.error instanceof CaptureError);
      }
    }
  });

  test('a file that cannot be opened rejects with a CaptureError at offset 0', async () => {
    const path = join(tmp, 'no-such-file.pcap');
    await assert.rejects(readCaptureFile(path, { onPacket() {} }), (err: unknown) => {
      assert.ok(err instanceof CaptureError);
      assert.equal(err.offset, 0);
      assert.equal(err.file, path);
      assert.match(err.reason, /ENOENT/);
      return true;
    });
  });
});

describe('options', () => {
  test('on_progress reports growing offsets up to the file size', async () => {
    const path = fixture('zeek/testing/btest/Traces/http/get.pcap');
    const size = readFileSync(path).length;
    const seen: Array<[number, number]> = [];
    await collect(path, { chunk_bytes: 1024, on_progress: (bytes_read, file_bytes) => seen.push([bytes_read, file_bytes]) });
    assert.ok(seen.length > 3);
    assert.ok(seen.every(([, file_bytes]) => file_bytes === size));
    assert.ok(seen.every(([bytes_read], i) => i === 0 || bytes_read >= seen[i - 1]![0]));
    assert.equal(seen[seen.length - 1]![0], size);
  });

  test('should_stop ends reading between chunks, without an error', async () => {
    const path = fixture('zeek/testing/btest/Traces/http/get.pcap');
    let checks = 0;
    const { summary, packets } = await collect(path, { chunk_bytes: 256, should_stop: () => ++checks >= 2 });
    assert.equal(summary.error, null);
    assert.ok(packets.length > 0 && packets.length < 14, `${packets.length} packets`);
    assert.equal(summary.packets, packets.length);
    assert.equal(summary.bytes_read, recordEnd(readFileSync(path), packets.length));
  });
});

/** Offset after the first `count` records of a pcap (walked here, independently of the reader). */
function recordEnd(pcap: Buffer, count: number): number {
  let pos = 24;
  for (let i = 0; i < count; i++) pos += 16 + pcap.readUInt32LE(pos + 8);
  return pos;
}

describe('corpus', () => {
  test('every capture in the corpus reads without throwing, with capinfos\' packet count', async () => {
    interface ManifestEntry { file: string; packets?: string; readable_packets?: number; capinfos_error?: string }
    const manifest = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8')) as ManifestEntry[];
    const by_file = new Map(manifest.map((e) => [e.file, e]));
    const files = (readdirSync(CORPUS, { recursive: true }) as string[])
      .filter((f) => /\.(pcap|pcapng|cap)$/.test(f) && !f.startsWith('_oracle'))
      .sort();
    assert.ok(files.length >= 77, `${files.length} captures`);
    let compared = 0;
    for (const file of files) {
      const summary = await readCaptureFile(join(CORPUS, file), { onPacket() {} });
      const entry = by_file.get(file);
      if (entry?.packets !== undefined) {
        assert.equal(summary.packets, Number(entry.packets), file);
        assert.equal(summary.error, null, file);
        compared++;
      } else if (entry?.readable_packets !== undefined) {
        // capinfos stopped with an error after this many packets; so must we.
        assert.equal(summary.packets, entry.readable_packets, file);
        assert.ok(summary.error instanceof CaptureError, file);
        compared++;
      }
    }
    assert.ok(compared >= 77, `${compared} compared`);
  });
});
