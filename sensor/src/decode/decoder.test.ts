/**
 * Parser specs for the decoder. Every packet is written out byte by byte; the expected
 * values were worked out by hand from the protocol definitions (RFC 791, RFC 8200,
 * RFC 9293, RFC 7323, RFC 768, IEEE 802.1Q, tcpdump's LINKTYPE pages). IP header
 * checksums are real in the SYN and the IPv4 DNS fragments and zero elsewhere: the
 * decoder does not verify checksums.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LinkType } from '../capture/packet-source.ts';
import { DecodedPacket } from './decoded-packet.ts';
import { Decoder, type DecoderOptions } from './decoder.ts';
import { KIND_COUNT, KIND_NAMES, Kind } from './decode-errors.ts';

/** Bytes from hex text; `#` starts a comment running to the end of the line. */
function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex: ${clean}`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

function payloadOf(p: DecodedPacket): Uint8Array {
  return p.payload_buf.subarray(p.payload_off, p.payload_off + p.payload_len);
}

interface Feed {
  linktype?: number;
  caplen?: number;
  wirelen?: number;
  ts_sec?: number;
  ts_nsec?: number;
}

/** Decodes `frame` with `dec`; returns decode()'s verdict. */
function feed(dec: Decoder, frame: Uint8Array, pkt: DecodedPacket, f: Feed = {}): boolean {
  return dec.decode(frame, 0, f.caplen ?? frame.length, f.wirelen ?? frame.length, f.linktype ?? LinkType.ETHERNET, f.ts_sec ?? 1_700_000_000, f.ts_nsec ?? 0, pkt);
}

function decodeOne(frame: Uint8Array, f: Feed = {}, options?: DecoderOptions) {
  const dec = new Decoder(options);
  const pkt = new DecodedPacket();
  const ok = feed(dec, frame, pkt, f);
  return { ok, pkt, dec, stats: dec.stats() };
}

// ---------------------------------------------------------------------------------
// Ethernet / IPv4 / TCP

/** A SYN carrying all four options the decoder picks up (Linux's usual layout). 74 bytes. */
const SYN = hex(`
  00 1b 21 3a 4c 5d        # Ethernet destination MAC
  52 54 00 12 34 56        # Ethernet source MAC
  08 00                    # ethertype IPv4
  45                       # IPv4: version 4, IHL 5 (20 bytes)
  00                       # DSCP / ECN
  00 3c                    # total length 60 = 20 IP + 40 TCP
  1c 46                    # identification
  40 00                    # flags DF, fragment offset 0
  40                       # TTL 64
  06                       # protocol 6 = TCP
  26 e9                    # header checksum
  c0 a8 01 0a              # source 192.168.1.10
  5d b8 d8 22              # destination 93.184.216.34
  d4 31                    # TCP: source port 54321
  00 50                    # destination port 80
  f1 e2 d3 c4              # sequence number 0xf1e2d3c4 (top bit set: must read unsigned)
  00 00 00 00              # acknowledgement number 0
  a0                       # data offset 10 words = 40 bytes, reserved 0
  02                       # flags: SYN
  fa f0                    # window 64240
  7f 62                    # checksum
  00 00                    # urgent pointer
  02 04 05 b4              # option MSS (kind 2, length 4): 1460
  04 02                    # option SACK permitted (kind 4, length 2)
  08 0a 00 9a 3b 5c 00 00 00 00  # option timestamps (kind 8, length 10): TSval 0x009a3b5c, TSecr 0
  01                       # option NOP
  03 03 07                 # option window scale (kind 3, length 3): shift 7
`);

/** Client → server data segment with a 16-byte payload. 70 bytes. */
const HTTP_GET = hex(`
  00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00   # Ethernet: dst, src, IPv4
  45 00 00 38              # IPv4 version 4 IHL 5, total length 56 = 20 + 20 + 16
  1c 47 40 00 40 06 00 00  # id, DF, TTL 64, protocol TCP, checksum (zero)
  c0 a8 01 0a 5d b8 d8 22  # 192.168.1.10 -> 93.184.216.34
  d4 31 00 50              # TCP ports 54321 -> 80
  f1 e2 d3 c5              # sequence number
  0a 0b 0c 0d              # acknowledgement number
  50 18                    # data offset 5 (20 bytes), flags PSH|ACK = 0x18
  01 f6                    # window 502
  00 00 00 00              # checksum, urgent pointer
  47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a   # "GET / HTTP/1.1\\r\\n"
`);

/** Pure ACK (IPv4 total length 40) padded by the NIC to the 60-byte Ethernet minimum. */
const PADDED_ACK = hex(`
  52 54 00 12 34 56 00 1b 21 3a 4c 5d 08 00   # Ethernet: dst, src, IPv4
  45 00 00 28              # IPv4, total length 40 = 20 + 20: no payload
  5a 5a 00 00 38 06 00 00  # id, no flags, TTL 56, TCP, checksum
  5d b8 d8 22 c0 a8 01 0a  # 93.184.216.34 -> 192.168.1.10
  00 50 d4 31              # TCP ports 80 -> 54321
  0a 0b 0c 0d f1 e2 d3 d5  # seq, ack
  50 10 01 00 00 00 00 00  # data offset 5, ACK, window 256, checksum, urgent
  00 00 00 00 00 00        # Ethernet padding: NOT payload
`);

describe('Ethernet / IPv4 / TCP', () => {
  it('decodes a SYN with MSS, SACK-permitted, timestamps and window scale', () => {
    // Put the frame at offset 7 of a larger buffer with junk around it.
    const buf = new Uint8Array(7 + SYN.length + 5).fill(0xee);
    buf.set(SYN, 7);
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(dec.decode(buf, 7, SYN.length, SYN.length, LinkType.ETHERNET, 1_700_000_000, 123_456_789, pkt), true);
    assert.equal(pkt.ts_sec, 1_700_000_000);
    assert.equal(pkt.ts_nsec, 123_456_789);
    assert.equal(pkt.wire_len, 74);
    assert.equal(pkt.vlan_id, -1);
    assert.equal(pkt.ip_version, 4);
    assert.equal(pkt.src0, 0xc0a8010a); // 192.168.1.10 = 3232235786
    assert.deepEqual([pkt.src1, pkt.src2, pkt.src3], [0, 0, 0]);
    assert.equal(pkt.dst0, 0x5db8d822); // 93.184.216.34 = 1572395042
    assert.deepEqual([pkt.dst1, pkt.dst2, pkt.dst3], [0, 0, 0]);
    assert.equal(pkt.transport, 6);
    assert.equal(pkt.src_port, 54321);
    assert.equal(pkt.dst_port, 80);
    assert.equal(pkt.seq, 4058174404); // 0xf1e2d3c4
    assert.equal(pkt.ack, 0);
    assert.equal(pkt.tcp_flags, 0x02);
    assert.equal(pkt.window, 64240);
    assert.equal(pkt.opt_mss, 1460);
    assert.equal(pkt.opt_wscale, 7);
    assert.equal(pkt.opt_sack_permitted, true);
    assert.equal(pkt.opt_ts_val, 10107740); // 0x009a3b5c
    assert.equal(pkt.opt_ts_ecr, 0);
    assert.equal(pkt.payload_buf, buf);
    assert.equal(pkt.payload_off, 7 + 14 + 20 + 40);
    assert.equal(pkt.payload_len, 0);
    assert.equal(pkt.payload_wire_len, 0);
    assert.deepEqual(dec.stats().decode_errors, {});
    assert.deepEqual(dec.stats().skipped, {});
  });

  it('decodes a data segment and points the payload into the capture buffer', () => {
    const { ok, pkt } = decodeOne(HTTP_GET);
    assert.equal(ok, true);
    assert.equal(pkt.seq, 4058174405); // 0xf1e2d3c5
    assert.equal(pkt.ack, 168496141); // 0x0a0b0c0d
    assert.equal(pkt.tcp_flags, 0x18);
    assert.equal(pkt.window, 502);
    assert.equal(pkt.opt_mss, -1);
    assert.equal(pkt.opt_wscale, -1);
    assert.equal(pkt.opt_sack_permitted, false);
    assert.equal(pkt.opt_ts_val, -1);
    assert.equal(pkt.opt_ts_ecr, -1);
    assert.equal(pkt.payload_off, 54);
    assert.equal(pkt.payload_len, 16);
    assert.equal(pkt.payload_wire_len, 16);
    assert.deepEqual(payloadOf(pkt), ascii('GET / HTTP/1.1\r\n'));
  });

  it('resets the optional TCP fields between packets', () => {
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, SYN, pkt), true);
    assert.equal(pkt.opt_mss, 1460);
    assert.equal(feed(dec, HTTP_GET, pkt), true);
    assert.equal(pkt.opt_mss, -1);
    assert.equal(pkt.opt_wscale, -1);
    assert.equal(pkt.opt_sack_permitted, false);
    assert.equal(pkt.opt_ts_val, -1);
    assert.equal(pkt.opt_ts_ecr, -1);
  });

  it('does not count Ethernet padding beyond the IP total length as payload', () => {
    const { ok, pkt } = decodeOne(PADDED_ACK);
    assert.equal(ok, true);
    assert.equal(PADDED_ACK.length, 60);
    assert.equal(pkt.wire_len, 60);
    assert.equal(pkt.tcp_flags, 0x10);
    assert.equal(pkt.payload_off, 54);
    assert.equal(pkt.payload_len, 0);
    assert.equal(pkt.payload_wire_len, 0);
  });

  it('decodes a payload cut by the snap length: present vs announced bytes', () => {
    // snap length 60: 14 + 20 + 20 header bytes + the first 6 payload bytes
    const { ok, pkt } = decodeOne(HTTP_GET, { caplen: 60, wirelen: 70 });
    assert.equal(ok, true);
    assert.equal(pkt.wire_len, 70);
    assert.equal(pkt.payload_len, 6);
    assert.equal(pkt.payload_wire_len, 16);
    assert.deepEqual(payloadOf(pkt), ascii('GET / '));
  });

  it('counts a TCP header cut by the snap length as tcp_truncated', () => {
    // 14 + 20 + 12: the TCP header stops after the acknowledgement number
    const { ok, stats } = decodeOne(HTTP_GET, { caplen: 46, wirelen: 70 });
    assert.equal(ok, false);
    assert.deepEqual(stats.decode_errors, { tcp_truncated: 1 });
  });

  it('still decodes a SYN whose options the snap length cut, counting tcp_options_truncated', () => {
    // 14 + 20 + 26: the 20-byte base header and the first 6 option bytes (MSS, then 2 bytes of SACK-permitted/…)
    const syn = decodeOne(SYN, { caplen: 60, wirelen: 74 });
    assert.equal(syn.ok, true);
    assert.equal(syn.pkt.tcp_flags & 0x02, 0x02);
    assert.equal(syn.pkt.opt_mss, 1460);
    assert.equal(syn.pkt.payload_len, 0);
    assert.equal(syn.pkt.payload_wire_len, 0);
    assert.deepEqual(syn.stats.decode_errors, { tcp_options_truncated: 1 });
  });

  it('counts IHL < 5 as ipv4_bad_ihl', () => {
    const frame = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00   # Ethernet, IPv4
      44                       # version 4, IHL 4 = 16 bytes: below the 20-byte minimum
      00 00 28 1c 47 00 00 40 06 00 00 c0 a8 01 0a 5d b8 d8 22
      d4 31 00 50 00 00 00 01 00 00 00 00 50 10 01 00 00 00 00 00   # TCP
    `);
    const { ok, stats } = decodeOne(frame);
    assert.equal(ok, false);
    assert.deepEqual(stats.decode_errors, { ipv4_bad_ihl: 1 });
  });

  it('counts a total length below the header, or beyond the frame, as ipv4_bad_length', () => {
    const short = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00
      45 00 00 10              # total length 16 < IHL 5 * 4 = 20
      1c 47 00 00 40 06 00 00 c0 a8 01 0a 5d b8 d8 22
      d4 31 00 50 00 00 00 01 00 00 00 00 50 10 01 00 00 00 00 00
    `);
    assert.deepEqual(decodeOne(short).stats.decode_errors, { ipv4_bad_length: 1 });
    const long = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00
      45 00 00 50              # total length 80, but only 40 bytes follow on the wire
      1c 47 00 00 40 06 00 00 c0 a8 01 0a 5d b8 d8 22
      d4 31 00 50 00 00 00 01 00 00 00 00 50 10 01 00 00 00 00 00
    `);
    assert.deepEqual(decodeOne(long).stats.decode_errors, { ipv4_bad_length: 1 });
  });

  it('counts a data offset < 5 as tcp_bad_offset', () => {
    const frame = HTTP_GET.slice();
    frame[14 + 20 + 12] = 0x40; // data offset 4 words
    assert.deepEqual(decodeOne(frame).stats.decode_errors, { tcp_bad_offset: 1 });
  });

  it('counts a malformed option list but still delivers the packet with the options before the fault', () => {
    const frame = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00
      45 00 00 30 00 01 00 00 40 06 00 00 c0 a8 01 0a 5d b8 d8 22   # IPv4 total 48 = 20 + 28
      d4 31 00 50 00 00 00 64 00 00 00 00
      70 02                    # data offset 7 words = 28 bytes, SYN
      ff ff 00 00 00 00
      02 04 05 78              # MSS 1400
      08 0a 00 00              # timestamps claims 10 bytes, only 4 remain in the header
    `);
    const { ok, pkt, stats } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.opt_mss, 1400);
    assert.equal(pkt.opt_ts_val, -1);
    assert.deepEqual(stats.decode_errors, { tcp_bad_option: 1 });

    // An option length of 0 would loop forever if not caught.
    const zero = frame.slice();
    zero.set(hex('04 00 00 00'), 14 + 20 + 24); // SACK-permitted with length 0
    const z = decodeOne(zero);
    assert.equal(z.ok, true);
    assert.equal(z.pkt.opt_mss, 1400);
    assert.equal(z.pkt.opt_sack_permitted, false);
    assert.deepEqual(z.stats.decode_errors, { tcp_bad_option: 1 });
  });

  it('treats a window scale above 14 as 14 (RFC 7323 §2.3) and ends the list at EOL', () => {
    const frame = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00
      45 00 00 30 00 01 00 00 40 06 00 00 c0 a8 01 0a 5d b8 d8 22
      d4 31 00 50 00 00 00 64 00 00 00 00 70 02 ff ff 00 00 00 00
      03 03 0f                 # window scale shift 15
      00                       # EOL: the rest is ignored
      02 04 05 78              # (after EOL: not an option)
    `);
    const { ok, pkt, stats } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.opt_wscale, 14);
    assert.equal(pkt.opt_mss, -1);
    assert.deepEqual(stats.decode_errors, {});
  });
});

// ---------------------------------------------------------------------------------
// VLAN tags and link types

/** IPv4 / UDP 10.0.0.1:1234 -> 10.0.0.2:5678 carrying "ping". 32 bytes. */
const IPV4_UDP = hex(`
  45 00 00 20              # IPv4, total length 32 = 20 + 8 + 4
  00 07 00 00 40 11 00 00  # id 7, TTL 64, protocol 17 = UDP, checksum
  0a 00 00 01 0a 00 00 02  # 10.0.0.1 -> 10.0.0.2
  04 d2 16 2e              # UDP ports 1234 -> 5678
  00 0c 00 00              # UDP length 12 = 8 + 4, checksum 0 (none)
  70 69 6e 67              # "ping"
`);

/** IPv6 / TCP SYN [2001:db8::1]:49152 -> [2001:db8::2]:443. 60 bytes. */
const IPV6_TCP = hex(`
  60 00 00 00              # version 6, traffic class 0, flow label 0
  00 14                    # payload length 20
  06                       # next header TCP
  40                       # hop limit 64
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # source 2001:db8::1
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   # destination 2001:db8::2
  c0 00 01 bb              # TCP ports 49152 -> 443
  00 00 00 01 00 00 00 00  # seq 1, ack 0
  50 02 ff ff 00 00 00 00  # data offset 5, SYN, window 65535, checksum, urgent
`);

function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function assertIpv4Udp(p: DecodedPacket): void {
  assert.equal(p.ip_version, 4);
  assert.equal(p.src0, 0x0a000001);
  assert.equal(p.dst0, 0x0a000002);
  assert.equal(p.transport, 17);
  assert.equal(p.src_port, 1234);
  assert.equal(p.dst_port, 5678);
  assert.equal(p.payload_len, 4);
  assert.equal(p.payload_wire_len, 4);
  assert.deepEqual(payloadOf(p), ascii('ping'));
}

function assertIpv6Tcp(p: DecodedPacket): void {
  assert.equal(p.ip_version, 6);
  assert.deepEqual([p.src0, p.src1, p.src2, p.src3], [0x20010db8, 0, 0, 1]);
  assert.deepEqual([p.dst0, p.dst1, p.dst2, p.dst3], [0x20010db8, 0, 0, 2]);
  assert.equal(p.transport, 6);
  assert.equal(p.src_port, 49152);
  assert.equal(p.dst_port, 443);
  assert.equal(p.seq, 1);
  assert.equal(p.tcp_flags, 0x02);
  assert.equal(p.window, 65535);
  assert.equal(p.payload_len, 0);
}

describe('VLAN tags', () => {
  it('QinQ: 802.1ad outer tag then 802.1Q inner tag; vlan_id is the outer VID', () => {
    const frame = cat(hex(`
      ff ff ff ff ff ff 00 00 5e 00 53 01   # Ethernet dst, src
      88 a8                    # TPID 802.1ad (service tag)
      00 64                    # TCI: PCP 0, DEI 0, VID 100
      81 00                    # TPID 802.1Q (customer tag)
      00 c8                    # TCI: VID 200
      08 00                    # ethertype IPv4
    `), IPV4_UDP);
    const { ok, pkt } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.vlan_id, 100);
    assert.equal(pkt.payload_off, 22 + 28);
    assertIpv4Udp(pkt);
  });

  it('old-style 0x9100 outer tag; priority bits are not part of the VID', () => {
    const frame = cat(hex(`
      ff ff ff ff ff ff 00 00 5e 00 53 01
      91 00                    # TPID 0x9100 (pre-802.1ad QinQ)
      e0 0a                    # TCI: PCP 7, DEI 0, VID 10
      81 00 00 14              # 802.1Q, VID 20
      08 00
    `), IPV4_UDP);
    const { ok, pkt } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.vlan_id, 10);
    assertIpv4Udp(pkt);
  });

  it('single 802.1Q tag', () => {
    const frame = cat(hex(`
      ff ff ff ff ff ff 00 00 5e 00 53 01
      81 00                    # TPID 802.1Q
      30 7b                    # TCI: PCP 1, DEI 1, VID 0x07b = 123
      86 dd                    # ethertype IPv6
    `), IPV6_TCP);
    const { ok, pkt } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.vlan_id, 123);
    assertIpv6Tcp(pkt);
  });

  it('counts a tag cut short as vlan_truncated', () => {
    const frame = hex('ff ff ff ff ff ff 00 00 5e 00 53 01  81 00  00 64'); // tag without its ethertype
    assert.deepEqual(decodeOne(frame).stats.decode_errors, { vlan_truncated: 1 });
  });
});

describe('link types', () => {
  it('Linux SLL: 16-byte header, protocol at offset 14', () => {
    const frame = cat(hex(`
      00 00                    # packet type 0: sent to us
      00 01                    # ARPHRD_ETHER
      00 06                    # link-layer address length 6
      52 54 00 12 34 56 00 00  # address, padded to 8 bytes
      08 00                    # protocol type IPv4
    `), IPV4_UDP);
    const { ok, pkt } = decodeOne(frame, { linktype: LinkType.LINUX_SLL });
    assert.equal(ok, true);
    assert.equal(pkt.payload_off, 16 + 28);
    assertIpv4Udp(pkt);
  });

  it('Linux SLL2: 20-byte header, protocol at offset 0', () => {
    const frame = cat(hex(`
      86 dd                    # protocol type IPv6
      00 00                    # reserved
      00 00 00 02              # interface index 2
      00 01                    # ARPHRD_ETHER
      04                       # packet type 4: outgoing
      06                       # link-layer address length 6
      52 54 00 12 34 56 00 00  # address, padded to 8 bytes
    `), IPV6_TCP);
    const { ok, pkt } = decodeOne(frame, { linktype: LinkType.LINUX_SLL2 });
    assert.equal(ok, true);
    assert.equal(pkt.payload_off, 20 + 60);
    assertIpv6Tcp(pkt);
  });

  it('NULL: AF_INET (2) in either byte order', () => {
    for (const family of ['02 00 00 00', '00 00 00 02']) {
      const { ok, pkt } = decodeOne(cat(hex(family), IPV4_UDP), { linktype: LinkType.NULL });
      assert.equal(ok, true, family);
      assert.equal(pkt.payload_off, 4 + 28);
      assertIpv4Udp(pkt);
    }
  });

  it('NULL: AF_INET6 as Darwin writes it (30) in either byte order, and 24 / 28', () => {
    for (const family of ['1e 00 00 00', '00 00 00 1e', '18 00 00 00', '00 00 00 1c']) {
      const { ok, pkt } = decodeOne(cat(hex(family), IPV6_TCP), { linktype: LinkType.NULL });
      assert.equal(ok, true, family);
      assertIpv6Tcp(pkt);
    }
  });

  it('NULL: another family is skipped as non_ip', () => {
    const { ok, stats } = decodeOne(cat(hex('07 00 00 00'), IPV4_UDP), { linktype: LinkType.NULL });
    assert.equal(ok, false);
    assert.deepEqual(stats.skipped, { non_ip: 1 });
  });

  it('LOOP: the family is big-endian', () => {
    const ok = decodeOne(cat(hex('00 00 00 02'), IPV4_UDP), { linktype: LinkType.LOOP });
    assert.equal(ok.ok, true);
    assertIpv4Udp(ok.pkt);
    // 02 00 00 00 read big-endian is 0x02000000: not a family
    const no = decodeOne(cat(hex('02 00 00 00'), IPV4_UDP), { linktype: LinkType.LOOP });
    assert.equal(no.ok, false);
    assert.deepEqual(no.stats.skipped, { non_ip: 1 });
  });

  it('RAW, IPV4, IPV6 (and DLT_RAW 12/14): the version nibble decides', () => {
    for (const lt of [LinkType.RAW, LinkType.IPV4, LinkType.IPV6, 12, 14]) {
      const v4 = decodeOne(IPV4_UDP, { linktype: lt });
      assert.equal(v4.ok, true, `linktype ${lt}`);
      assertIpv4Udp(v4.pkt);
      const v6 = decodeOne(IPV6_TCP, { linktype: lt });
      assert.equal(v6.ok, true, `linktype ${lt}`);
      assertIpv6Tcp(v6.pkt);
    }
    const bad = IPV4_UDP.slice();
    bad[0] = 0x55; // version 5
    assert.deepEqual(decodeOne(bad, { linktype: LinkType.RAW }).stats.decode_errors, { ip_bad_version: 1 });
  });

  it('skips non-IP ethertypes, other transports and unknown link types', () => {
    const arp = hex(`
      ff ff ff ff ff ff 52 54 00 12 34 56 08 06   # Ethernet, ethertype ARP
      00 01 08 00 06 04 00 01 52 54 00 12 34 56 0a 00 00 01 00 00 00 00 00 00 0a 00 00 02
    `);
    const icmp = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 08 00
      45 00 00 1c 00 01 00 00 40 01 00 00 0a 00 00 01 0a 00 00 02   # protocol 1 = ICMP
      08 00 f7 fe 00 01 00 00  # echo request
    `);
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, arp, pkt), false);
    assert.equal(feed(dec, icmp, pkt), false);
    assert.equal(pkt.transport, 1);
    assert.equal(feed(dec, SYN, pkt, { linktype: 147 }), false); // LINKTYPE_USER0
    assert.equal(feed(dec, hex('00 1b 21 3a 4c 5d 52 54'), pkt), false); // 8 bytes: no ethertype
    assert.deepEqual(dec.stats().skipped, { non_ip: 1, other_transport: 1, unsupported_linktype: 1 });
    assert.deepEqual(dec.stats().decode_errors, { link_truncated: 1 });
  });
});

// ---------------------------------------------------------------------------------
// IPv6 extension headers

describe('IPv6 extension headers', () => {
  it('walks hop-by-hop and destination options to TCP', () => {
    const frame = hex(`
      00 1b 21 3a 4c 5d 52 54 00 12 34 56 86 dd   # Ethernet, IPv6
      60 00 00 00              # version 6
      00 28                    # payload length 40 = 8 HBH + 8 DO + 20 TCP + 4 data
      00                       # next header 0: hop-by-hop options
      40                       # hop limit
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # 2001:db8::1
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02   # 2001:db8::2
      3c 00 01 04 00 00 00 00  # HBH: next header 60, Hdr Ext Len 0 (8 bytes), PadN(4)
      06 00 01 04 00 00 00 00  # destination options: next header 6, Hdr Ext Len 0, PadN(4)
      01 bb c3 50              # TCP ports 443 -> 50000
      00 00 00 01 00 00 00 02  # seq 1, ack 2
      50 18 01 f5 00 00 00 00  # data offset 5, PSH|ACK, window 501
      70 6f 6e 67              # "pong"
    `);
    const { ok, pkt } = decodeOne(frame);
    assert.equal(ok, true);
    assert.equal(pkt.ip_version, 6);
    assert.deepEqual([pkt.src0, pkt.src1, pkt.src2, pkt.src3], [0x20010db8, 0, 0, 1]);
    assert.deepEqual([pkt.dst0, pkt.dst1, pkt.dst2, pkt.dst3], [0x20010db8, 0, 0, 2]);
    assert.equal(pkt.transport, 6);
    assert.equal(pkt.src_port, 443);
    assert.equal(pkt.dst_port, 50000);
    assert.equal(pkt.ack, 2);
    assert.equal(pkt.tcp_flags, 0x18);
    assert.equal(pkt.window, 501);
    assert.equal(pkt.payload_off, 14 + 40 + 16 + 20);
    assert.deepEqual(payloadOf(pkt), ascii('pong'));
  });

  it('steps over an authentication header (length in 4-byte units minus 2, RFC 4302)', () => {
    const frame = cat(hex(`
      60 00 00 00 00 2c 33 40  # payload length 44 = 24 AH + 20 TCP, next header 51 = AH
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      06                       # AH: next header TCP
      04                       # Payload Len 4: (4 + 2) * 4 = 24 bytes
      00 00 00 00 01 00 00 00 00 01   # reserved, SPI 0x100, sequence 1
      00 00 00 00 00 00 00 00 00 00 00 00   # ICV (12 bytes, HMAC-SHA1-96)
    `), IPV6_TCP.subarray(40));
    const { ok, pkt } = decodeOne(frame, { linktype: LinkType.RAW });
    assert.equal(ok, true);
    assert.equal(pkt.payload_off, 40 + 24 + 20);
    assert.equal(pkt.src_port, 49152);
  });

  it('stops at ESP and at no-next-header (other_transport)', () => {
    const esp = hex(`
      60 00 00 00 00 08 32 40  # payload length 8, next header 50 = ESP
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      00 00 01 00 00 00 00 01  # SPI, sequence: the rest would be encrypted
    `);
    const none = hex(`
      60 00 00 00 00 08 00 40  # payload length 8, next header 0 = hop-by-hop
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      3b 00 01 04 00 00 00 00  # HBH: next header 59 = no next header
    `);
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, esp, pkt, { linktype: LinkType.RAW }), false);
    assert.equal(pkt.transport, 50);
    assert.equal(feed(dec, none, pkt, { linktype: LinkType.RAW }), false);
    assert.equal(pkt.transport, 59);
    assert.deepEqual(dec.stats().skipped, { other_transport: 2 });
  });

  it('counts a jumbogram (payload length 0 + hop-by-hop) as unsupported', () => {
    const frame = hex(`
      60 00 00 00
      00 00                    # payload length 0: see the Jumbo Payload option
      00 40                    # next header hop-by-hop, hop limit
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      06 00 c2 04 00 01 00 14  # HBH: next header TCP, Jumbo Payload option (0xc2), length 65556
    `);
    const { ok, stats } = decodeOne(frame, { linktype: LinkType.RAW });
    assert.equal(ok, false);
    assert.deepEqual(stats.skipped, { ipv6_jumbo: 1 });
  });

  it('counts an extension header running past the payload length, or cut by the snap length', () => {
    const frame = hex(`
      60 00 00 00 00 08 00 40  # payload length 8, hop-by-hop
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      06 01 01 0c 00 00 00 00  # HBH: Hdr Ext Len 1 = 16 bytes, but the payload is 8
    `);
    assert.deepEqual(decodeOne(frame, { linktype: LinkType.RAW }).stats.decode_errors, { ipv6_bad_ext_header: 1 });
    const whole = hex(`
      60 00 00 00 00 10 00 40  # payload length 16, hop-by-hop
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      3b 01 01 0c 00 00 00 00 00 00 00 00 00 00 00 00   # HBH: 16 bytes, next header 59
    `);
    assert.deepEqual(decodeOne(whole, { linktype: LinkType.RAW }).stats.skipped, { other_transport: 1 });
    // snap length 48: the header announces 16 bytes, 8 were captured
    const cut = decodeOne(whole, { linktype: LinkType.RAW, caplen: 48, wirelen: 56 });
    assert.deepEqual(cut.stats.decode_errors, { ipv6_truncated: 1 });
  });
});

// ---------------------------------------------------------------------------------
// Fragments

/** The DNS answer carried by the fragmented UDP datagrams below (45 bytes). */
const DNS_ANSWER = hex(`
  4d 2a                    # ID
  81 80                    # flags: QR, RD, RA, NOERROR
  00 01 00 01 00 00 00 00  # QDCOUNT 1, ANCOUNT 1, NSCOUNT 0, ARCOUNT 0
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00   # QNAME example.com
  00 01 00 01              # QTYPE A, QCLASS IN
  c0 0c                    # answer NAME: pointer to offset 12
  00 01 00 01              # TYPE A, CLASS IN
  00 00 0e 10              # TTL 3600
  00 04 5d b8 d8 22        # RDLENGTH 4, RDATA 93.184.216.34
`);

// The UDP datagram is 8 + 45 = 53 bytes, sent in three fragments of 16, 16 and 21 bytes.
const V4_FRAG_1 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 08 00   # Ethernet, IPv4
  45 00 00 24              # total length 36 = 20 + 16
  be ef                    # identification 0xbeef
  20 00                    # flags MF, fragment offset 0
  40 11 ca 17              # TTL 64, UDP, checksum
  08 08 08 08 c0 a8 01 0a  # 8.8.8.8 -> 192.168.1.10
  00 35 e1 0f 00 35 b1 5f  # UDP: ports 53 -> 57615, length 53, checksum
  4d 2a 81 80 00 01 00 01  # DNS bytes 0..7
  00 00 00 00 00 00 00 00 00 00   # Ethernet padding (frame 50 -> 60)
`);
const V4_FRAG_2 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 08 00
  45 00 00 24 be ef
  20 02                    # flags MF, fragment offset 2 (x 8 = byte 16)
  40 11 ca 15 08 08 08 08 c0 a8 01 0a
  00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d   # DNS bytes 8..23
  00 00 00 00 00 00 00 00 00 00   # Ethernet padding
`);
const V4_FRAG_3 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 08 00
  45 00 00 29              # total length 41 = 20 + 21
  be ef
  00 04                    # last fragment (MF = 0), offset 4 (x 8 = byte 32)
  40 11 ea 0e 08 08 08 08 c0 a8 01 0a
  00 00 01 00 01 c0 0c 00 01 00 01 00 00 0e 10 00 04 5d b8 d8 22   # DNS bytes 24..44
  00 00 00 00 00               # Ethernet padding (frame 55 -> 60)
`);

const V6_FRAG_1 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 86 dd   # Ethernet, IPv6
  60 00 00 00
  00 18                    # payload length 24 = 8 fragment header + 16
  2c 40                    # next header 44 = fragment, hop limit 64
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 53   # 2001:db8::53
  20 01 0d b8 00 00 00 00 00 00 00 00 00 01 00 10   # 2001:db8::1:10
  11 00                    # fragment header: next header UDP, reserved
  00 01                    # offset 0, M = 1
  de ad be ef              # identification 0xdeadbeef
  00 35 e1 0f 00 35 27 4c  # UDP: ports 53 -> 57615, length 53, checksum
  4d 2a 81 80 00 01 00 01  # DNS bytes 0..7
`);
const V6_FRAG_2 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 86 dd
  60 00 00 00 00 18 2c 40
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 53
  20 01 0d b8 00 00 00 00 00 00 00 00 00 01 00 10
  11 00 00 11 de ad be ef  # fragment header: offset 2 (byte 16) = 0x0010, M = 1
  00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d   # DNS bytes 8..23
`);
const V6_FRAG_3 = hex(`
  00 1b 21 3a 4c 5d 52 54 00 ab cd ef 86 dd
  60 00 00 00 00 1d 2c 40  # payload length 29 = 8 + 21
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 53
  20 01 0d b8 00 00 00 00 00 00 00 00 00 01 00 10
  11 00 00 20 de ad be ef  # fragment header: offset 4 (byte 32) = 0x0020, M = 0
  00 00 01 00 01 c0 0c 00 01 00 01 00 00 0e 10 00 04 5d b8 d8 22   # DNS bytes 24..44
`);

/**
 * An IPv4 fragment 10.0.0.1 -> 10.0.0.2 of UDP datagram `id` (4 hex digits), with the
 * flags/offset word `ff` (4 hex digits) and `data` (hex).
 */
function v4Fragment(id: string, ff: string, data: string): Uint8Array {
  const bytes = hex(data);
  const total = (20 + bytes.length).toString(16).padStart(4, '0');
  return cat(hex(`
    00 1b 21 3a 4c 5d 52 54 00 ab cd ef 08 00
    45 00 ${total}           # IPv4, total length
    ${id} ${ff}              # identification, flags + offset
    40 11 00 00              # TTL, UDP, checksum
    0a 00 00 01 0a 00 00 02  # 10.0.0.1 -> 10.0.0.2
  `), bytes);
}

describe('IP fragment reassembly', () => {
  it('IPv4: a UDP DNS answer in 3 fragments arriving out of order becomes one UDP packet', () => {
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, V4_FRAG_3, pkt, { ts_nsec: 1 }), false);
    assert.equal(feed(dec, V4_FRAG_1, pkt, { ts_nsec: 2 }), false);
    assert.deepEqual(dec.stats().fragments, { received: 2, reassembled: 0, expired: 0, evicted: 0, too_large: 0, bytes_pending: 37, in_flight: 1 });
    assert.equal(feed(dec, V4_FRAG_2, pkt, { ts_nsec: 3 }), true);
    assert.equal(pkt.ts_nsec, 3);
    assert.equal(pkt.wire_len, 60);
    assert.equal(pkt.ip_version, 4);
    assert.equal(pkt.src0, 0x08080808);
    assert.equal(pkt.dst0, 0xc0a8010a);
    assert.equal(pkt.transport, 17);
    assert.equal(pkt.src_port, 53);
    assert.equal(pkt.dst_port, 57615);
    assert.equal(pkt.payload_len, 45);
    assert.equal(pkt.payload_wire_len, 45);
    assert.notEqual(pkt.payload_buf, V4_FRAG_2); // the reassembly buffer
    assert.deepEqual(payloadOf(pkt), DNS_ANSWER);
    assert.deepEqual(dec.stats().fragments, { received: 3, reassembled: 1, expired: 0, evicted: 0, too_large: 0, bytes_pending: 0, in_flight: 0 });
    assert.deepEqual(dec.stats().decode_errors, {});
  });

  it('IPv6: a UDP DNS answer in 3 fragments arriving out of order becomes one UDP packet', () => {
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, V6_FRAG_2, pkt), false);
    assert.equal(feed(dec, V6_FRAG_3, pkt), false);
    assert.equal(feed(dec, V6_FRAG_1, pkt), true);
    assert.equal(pkt.ip_version, 6);
    assert.deepEqual([pkt.src0, pkt.src1, pkt.src2, pkt.src3], [0x20010db8, 0, 0, 0x53]);
    assert.deepEqual([pkt.dst0, pkt.dst1, pkt.dst2, pkt.dst3], [0x20010db8, 0, 0, 0x00010010]); // ...:0001:0010
    assert.equal(pkt.transport, 17);
    assert.equal(pkt.src_port, 53);
    assert.equal(pkt.dst_port, 57615);
    assert.equal(pkt.payload_off, 8);
    assert.equal(pkt.payload_wire_len, 45);
    assert.deepEqual(payloadOf(pkt), DNS_ANSWER);
    assert.deepEqual(dec.stats().fragments, { received: 3, reassembled: 1, expired: 0, evicted: 0, too_large: 0, bytes_pending: 0, in_flight: 0 });
  });

  it('IPv6 atomic fragment (offset 0, M = 0; RFC 6946) is just the packet', () => {
    const frame = cat(hex(`
      60 00 00 00 00 1c 2c 40  # payload length 28 = 8 + 20, next header fragment
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
      06 00                    # fragment header: next header TCP
      00 00                    # offset 0, M = 0
      00 00 00 07              # identification 7
    `), IPV6_TCP.subarray(40));
    const { ok, pkt, stats } = decodeOne(frame, { linktype: LinkType.RAW });
    assert.equal(ok, true);
    assertIpv6Tcp(pkt);
    assert.equal(pkt.payload_off, 40 + 8 + 20);
    assert.equal(stats.fragments.received, 0);
  });

  it('overlapping fragments: the bytes that arrived first win', () => {
    const head = v4Fragment('00 01', '20 00', '04 d2 16 2e 00 1d 00 00  41 41 41 41 41 41 41 41'); // UDP header (length 29) + AAAAAAAA
    const overlap = v4Fragment('00 01', '20 01', '42 42 42 42 42 42 42 42  43 43 43 43 43 43 43 43'); // offset 8: BBBBBBBB CCCCCCCC
    const tail = v4Fragment('00 01', '00 03', '44 44 44 44 44'); // offset 24, last: DDDDD

    const a = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(a, head, pkt), false);
    assert.equal(feed(a, overlap, pkt), false);
    assert.equal(feed(a, tail, pkt), true);
    assert.deepEqual(payloadOf(pkt), ascii('AAAAAAAACCCCCCCCDDDDD'));

    const b = new Decoder();
    assert.equal(feed(b, overlap, pkt), false);
    assert.equal(feed(b, tail, pkt), false);
    assert.equal(feed(b, head, pkt), true);
    assert.deepEqual(payloadOf(pkt), ascii('BBBBBBBBCCCCCCCCDDDDD'));
  });

  it('fragments of a non-TCP/UDP protocol are skipped, not reassembled', () => {
    const frame = hex(`
      00 1b 21 3a 4c 5d 52 54 00 ab cd ef 08 00
      45 00 00 24 00 09 20 00 40 01 00 00 0a 00 00 01 0a 00 00 02   # MF, protocol ICMP
      08 00 00 00 00 01 00 01 00 00 00 00 00 00 00 00
    `);
    const { ok, stats } = decodeOne(frame);
    assert.equal(ok, false);
    assert.deepEqual(stats.skipped, { other_transport: 1 });
    assert.equal(stats.fragments.received, 0);
  });

  it('counts a non-last fragment whose length is not a multiple of 8, and inconsistent ends', () => {
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, v4Fragment('00 02', '20 00', '04 d2 16 2e 00 40 00 00 41 41'), pkt), false); // 10 bytes with MF
    assert.equal(feed(dec, v4Fragment('00 03', '00 02', '41 41 41 41'), pkt), false); // last: ends at 20
    assert.equal(feed(dec, v4Fragment('00 03', '00 04', '41 41 41 41'), pkt), false); // another last: ends at 36
    assert.deepEqual(dec.stats().decode_errors, { fragment_bad_length: 1, fragment_inconsistent: 1 });
  });

  it('counts a fragment cut by the snap length', () => {
    const { ok, stats } = decodeOne(V4_FRAG_1, { caplen: 40, wirelen: 60 });
    assert.equal(ok, false);
    assert.deepEqual(stats.decode_errors, { fragment_truncated: 1 });
  });

  it('evicts the oldest datagram when the bound is hit', () => {
    const dec = new Decoder({ max_reassembly_datagrams: 2 });
    const pkt = new DecodedPacket();
    const first = (id: string) => v4Fragment(id, '20 00', '04 d2 16 2e 00 0d 00 00'); // UDP header, length 13, MF
    const last = (id: string) => v4Fragment(id, '00 01', '21 22 23 24 25'); // offset 8, last
    assert.equal(feed(dec, first('00 0a'), pkt), false);
    assert.equal(feed(dec, first('00 0b'), pkt), false);
    assert.equal(feed(dec, first('00 0c'), pkt), false); // third in flight: 0x000a goes
    assert.deepEqual(dec.stats().fragments, { received: 3, reassembled: 0, expired: 0, evicted: 1, too_large: 0, bytes_pending: 16, in_flight: 2 });
    assert.equal(feed(dec, last('00 0c'), pkt), true);
    assert.deepEqual(payloadOf(pkt), hex('21 22 23 24 25'));
    assert.equal(feed(dec, last('00 0b'), pkt), true);
    assert.equal(feed(dec, last('00 0a'), pkt), false); // its head was evicted
    assert.deepEqual(dec.stats().fragments, { received: 6, reassembled: 2, expired: 0, evicted: 1, too_large: 0, bytes_pending: 5, in_flight: 1 });
  });

  it('expires incomplete datagrams by capture time', () => {
    const dec = new Decoder({ reassembly_timeout_s: 30 });
    const pkt = new DecodedPacket();
    assert.equal(feed(dec, V4_FRAG_1, pkt, { ts_sec: 1000 }), false);
    assert.equal(feed(dec, SYN, pkt, { ts_sec: 1030 }), true); // exactly 30 s: still waiting
    assert.equal(dec.stats().fragments.in_flight, 1);
    assert.equal(feed(dec, SYN, pkt, { ts_sec: 1030, ts_nsec: 1 }), true);
    assert.deepEqual(dec.stats().fragments, { received: 1, reassembled: 0, expired: 1, evicted: 0, too_large: 0, bytes_pending: 0, in_flight: 0 });
    // the rest arriving late does not complete anything
    assert.equal(feed(dec, V4_FRAG_2, pkt, { ts_sec: 1031 }), false);
    assert.equal(feed(dec, V4_FRAG_3, pkt, { ts_sec: 1031 }), false);
    assert.equal(dec.stats().fragments.reassembled, 0);
  });

  it('drops datagrams above max_datagram_bytes and swallows the rest of their fragments', () => {
    const dec = new Decoder({ max_datagram_bytes: 100 });
    const pkt = new DecodedPacket();
    // offset 10 (byte 80) + 16 bytes + 20 header = 116 > 100
    assert.equal(feed(dec, v4Fragment('00 05', '20 0a', '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'), pkt), false);
    assert.equal(feed(dec, v4Fragment('00 05', '20 00', '04 d2 16 2e 00 70 00 00'), pkt), false);
    assert.deepEqual(dec.stats().fragments, { received: 2, reassembled: 0, expired: 0, evicted: 0, too_large: 1, bytes_pending: 0, in_flight: 1 });
  });

  it('counts a fragment that would end beyond 65535 bytes (RFC 791)', () => {
    // offset 0x1fff * 8 = 65528, + 16 bytes + 20 header > 65535
    const { ok, stats } = decodeOne(v4Fragment('00 06', '3f ff', '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'));
    assert.equal(ok, false);
    assert.deepEqual(stats.decode_errors, { fragment_bad_length: 1 });
  });
});

// ---------------------------------------------------------------------------------
// Statistics, robustness

describe('statistics and robustness', () => {
  it('names every kind once', () => {
    assert.equal(Object.keys(Kind).length, KIND_COUNT);
    assert.equal(new Set(KIND_NAMES).size, KIND_COUNT);
    assert.equal(KIND_NAMES[Kind.IPV4_BAD_IHL], 'ipv4_bad_ihl');
    assert.ok(KIND_NAMES.every((n) => n !== ''));
  });

  it('never throws on random or damaged input', () => {
    let seed = 12345;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const dec = new Decoder({ max_reassembly_datagrams: 8 });
    const pkt = new DecodedPacket();
    const linktypes = [0, 1, 12, 101, 108, 113, 228, 229, 276, 999];
    const seeds = [SYN, HTTP_GET, PADDED_ACK, V4_FRAG_1, V4_FRAG_2, V4_FRAG_3, V6_FRAG_1, V6_FRAG_2, V6_FRAG_3];
    for (let i = 0; i < 50_000; i++) {
      let frame: Uint8Array;
      let linktype: number = LinkType.ETHERNET;
      if (i % 2 === 0) {
        frame = new Uint8Array(rnd() % 120);
        for (let j = 0; j < frame.length; j++) frame[j] = rnd() & 0xff;
        linktype = linktypes[rnd() % linktypes.length];
      } else {
        frame = seeds[rnd() % seeds.length].slice();
        for (let k = rnd() % 4; k >= 0; k--) frame[rnd() % frame.length] = rnd() & 0xff;
      }
      const caplen = rnd() % (frame.length + 8); // sometimes beyond the buffer
      const wirelen = rnd() % (frame.length + 20);
      assert.doesNotThrow(() => dec.decode(frame, 0, caplen, wirelen, linktype, 1000 + (i >> 8), 0, pkt));
    }
    const s = dec.stats();
    assert.ok(Object.keys(s.decode_errors).length > 5);
  });
});

// ---------------------------------------------------------------------------------
// A real capture: zeek's ipv6-fragmented-dns.pcap (see test/fixtures/PROVENANCE.md)

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/corpus/zeek/testing/btest/Traces/ipv6-fragmented-dns.pcap');

/** Records of a classic little-endian microsecond pcap file: 24-byte header, 16-byte record headers. */
function readPcap(file: string): { linktype: number; records: { ts_sec: number; ts_usec: number; data: Uint8Array; wirelen: number }[] } {
  const b = readFileSync(file);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4);
  const linktype = b.readUInt32LE(20);
  const records = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const caplen = b.readUInt32LE(o + 8);
    records.push({ ts_sec: b.readUInt32LE(o), ts_usec: b.readUInt32LE(o + 4), wirelen: b.readUInt32LE(o + 12), data: new Uint8Array(b.subarray(o + 16, o + 16 + caplen)) });
    o += 16 + caplen;
  }
  return { linktype, records };
}

/** RFC 768 / RFC 8200 §8.1: one's-complement sum over the IPv6 pseudo-header and the UDP datagram. */
function udp6ChecksumOk(p: DecodedPacket, udp: Uint8Array): boolean {
  let sum = 0;
  for (const w of [p.src0, p.src1, p.src2, p.src3, p.dst0, p.dst1, p.dst2, p.dst3]) sum += (w >>> 16) + (w & 0xffff);
  sum += (udp.length >>> 16) + (udp.length & 0xffff) + 17;
  for (let i = 0; i < udp.length; i += 2) sum += (udp[i] << 8) | (i + 1 < udp.length ? udp[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum === 0xffff;
}

describe('corpus: zeek ipv6-fragmented-dns.pcap', () => {
  it('reassembles the 3-fragment DNS response; the lone last fragment of the other stays pending', () => {
    const { linktype, records } = readPcap(FIXTURE);
    assert.equal(linktype, LinkType.ETHERNET);
    assert.equal(records.length, 8);
    const dec = new Decoder();
    const pkt = new DecodedPacket();
    const verdicts: boolean[] = [];
    let answer: { len: number; wire: number; sport: number; dport: number; dnsId: number; checksumOk: boolean } | undefined;
    for (const r of records) {
      const ok = dec.decode(r.data, 0, r.data.length, r.wirelen, linktype, r.ts_sec, r.ts_usec * 1000, pkt);
      verdicts.push(ok);
      if (ok && pkt.payload_len > 3000) {
        const udp = pkt.payload_buf.subarray(pkt.payload_off - 8, pkt.payload_off + pkt.payload_len);
        answer = {
          len: pkt.payload_len,
          wire: pkt.payload_wire_len,
          sport: pkt.src_port,
          dport: pkt.dst_port,
          dnsId: (pkt.payload_buf[pkt.payload_off] << 8) | pkt.payload_buf[pkt.payload_off + 1],
          checksumOk: udp6ChecksumOk(pkt, udp),
        };
      }
    }
    // queries and the unfragmented answer pass; #4 is the last fragment of datagram 1,
    // whose other fragments were not captured; #6-#8 are datagram 2 (offsets 0, 1432, 2864).
    assert.deepEqual(verdicts, [true, true, true, false, true, false, false, true]);
    // UDP length 0x0ca6 = 3238 → 3230 bytes of DNS; the query id 0x9f91 is echoed.
    assert.deepEqual(answer, { len: 3230, wire: 3230, sport: 53, dport: 0xca8b, dnsId: 0x9f91, checksumOk: true });
    const s = dec.stats();
    assert.deepEqual(s.decode_errors, {});
    assert.deepEqual(s.skipped, {});
    // pending: the 350 - 8 = 342 data bytes of record #4
    assert.deepEqual(s.fragments, { received: 4, reassembled: 1, expired: 0, evicted: 0, too_large: 0, bytes_pending: 342, in_flight: 1 });
  });
});

// ---------------------------------------------------------------------------------
// The one-pass path for Ethernet / IPv4 / TCP against the layer-by-layer parsers

const DECODED_FIELDS = Object.keys(new DecodedPacket()).filter((k) => k !== 'payload_buf') as (keyof DecodedPacket)[];

/** Decodes one packet with both decoders and asserts the same verdict, fields and payload bytes. */
function assertSameDecode(fast: Decoder, layered: Decoder, a: DecodedPacket, b: DecodedPacket,
  buf: Uint8Array, offset: number, caplen: number, wirelen: number, linktype: number, ts_sec: number, ts_nsec: number, where: string): boolean {
  const ok_fast = fast.decode(buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec, a);
  const ok_layered = layered.decode(buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec, b);
  assert.equal(ok_fast, ok_layered, where);
  if (!ok_fast) return false;
  for (const k of DECODED_FIELDS) assert.equal(a[k], b[k], `${where}: ${k}`);
  assert.deepEqual(payloadOf(a), payloadOf(b), `${where}: payload`);
  return true;
}

/** Untagged Ethernet, IPv4 not fragmented, TCP with no options or NOP NOP TS: the packets the one-pass path takes. */
function oneShape(buf: Uint8Array, offset: number, caplen: number, linktype: number): boolean {
  if (linktype !== LinkType.ETHERNET || caplen < 54 || buf[offset + 12] !== 8 || buf[offset + 13] !== 0) return false;
  const o = offset + 14;
  if (buf[o] >> 4 !== 4 || buf[o + 9] !== 6 || (((buf[o + 6] << 8) | buf[o + 7]) & 0x3fff) !== 0) return false;
  const t = o + ((buf[o] & 15) << 2);
  const thl = (buf[t + 12] >> 4) << 2;
  return thl === 20 || (thl === 32 && buf[t + 20] === 1 && buf[t + 21] === 1 && buf[t + 22] === 8 && buf[t + 23] === 10);
}

describe('one-pass Ethernet / IPv4 / TCP decoding', () => {
  it('gives what the layer parsers give on every packet of the corpus, and the same counters', async () => {
    const { readCaptureFile } = await import('../capture/pcap-file-source.ts');
    const corpus = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/corpus');
    const manifest = JSON.parse(readFileSync(join(corpus, 'manifest.json'), 'utf8')) as { file: string }[];
    let packets = 0;
    let shaped = 0;
    for (const { file } of manifest) {
      const fast = new Decoder();
      const layered = new Decoder({ fast_path: false });
      const a = new DecodedPacket();
      const b = new DecodedPacket();
      await readCaptureFile(join(corpus, file), {
        onPacket(buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec) {
          packets++;
          if (oneShape(buf, offset, caplen, linktype)) shaped++;
          assertSameDecode(fast, layered, a, b, buf, offset, caplen, wirelen, linktype, ts_sec, ts_nsec, `${file} #${packets}`);
        },
      });
      assert.deepEqual(fast.stats(), layered.stats(), file);
    }
    assert.equal(manifest.length, 77);
    // 2 454 of the corpus's 8 482 packets are of the one shape; the rest (IPv6, VLANs, SLL,
    // UDP, fragments, other TCP options) checks that the one-pass path leaves them alone.
    assert.ok(shaped >= 2_000 && packets - shaped >= 5_000, `${shaped} of ${packets} packets of the one shape`);
  });

  it('gives what the layer parsers give on damaged and cut copies of TCP packets', () => {
    let seed = 777;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    // NOP NOP TS (RFC 7323 Appendix A's layout) on an ACK: the one-pass path's option case.
    const TS_ACK = hex(`
      000c29aabbcc 000c29ddeeff 0800
      45 00 0034 1234 4000 40 06 0000 c0a80001 c0a80002
      d431 0050 00000064 000000c8 80 10 01f5 0000 0000
      01 01 08 0a 0001e240 00000457
    `);
    const seeds = [SYN, HTTP_GET, PADDED_ACK, TS_ACK, V4_FRAG_1];
    const fast = new Decoder();
    const layered = new Decoder({ fast_path: false });
    const a = new DecodedPacket();
    const b = new DecodedPacket();
    let shaped = 0;
    for (let i = 0; i < 50_000; i++) {
      const frame = seeds[rnd() % seeds.length].slice();
      // Damage falls on the headers (the first 66 bytes), where the checks are.
      for (let k = rnd() % 3; k > 0; k--) frame[rnd() % Math.min(66, frame.length)] = rnd() & 0xff;
      const r = rnd() % 4;
      const caplen = r === 0 ? rnd() % (frame.length + 1) : frame.length;
      const wirelen = r === 1 ? rnd() % (frame.length + 40) : frame.length;
      if (oneShape(frame, 0, caplen, LinkType.ETHERNET)) shaped++;
      assertSameDecode(fast, layered, a, b, frame, 0, caplen, wirelen, LinkType.ETHERNET, 1000 + (i >> 8), 0, `case ${i}`);
    }
    assert.deepEqual(fast.stats(), layered.stats());
    assert.ok(shaped > 10_000, `${shaped} of the one shape`);
  });
});
