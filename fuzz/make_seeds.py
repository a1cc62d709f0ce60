#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/seeds/<target>/ (the input formats are
documented at the top of each fuzz/src/<target>.rs). Re-run after changing a
format: `python3 fuzz/make_seeds.py`. Crash inputs found by fuzzing are saved
next to these as crash-* files by hand and are not touched here."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---------------------------------------------------------------- receive_pattern
def pat_str(s):
    return b"\x00" + (s.encode() if isinstance(s, str) else s)


def pat_f64(x):
    return b"\x01" + struct.pack("<d", x)


for name, s in [
    ("str-star-l", "*l"), ("str-l", "l"), ("str-star-a", "*a"), ("str-a", "a"),
    ("str-12", "12"), ("str-hex", " 0x10 "), ("str-star-x", "*x"), ("str-empty", ""),
    ("str-spaces", " \t42\r\n\x0b\x0c"), ("str-minus-zero", "-0"), ("str-minus-one", "-1"),
    ("str-half", "1.5"), ("str-whole-fraction", "10.000"), ("str-exp", "1e3"),
    ("str-inf", "inf"), ("str-nan", "nan"), ("str-plus", "+7"), ("str-dot5", ".5"),
    ("str-2p53", "9007199254740993"),
    ("str-star-L", "*L"), ("str-nul", "1\x00"),
]:
    write("receive_pattern", name, pat_str(s))
for name, x in [
    ("num-5", 5.0), ("num-nan", float("nan")), ("num-neg", -1.0), ("num-half", 1.5),
    ("num-inf", float("inf")), ("num-minus-zero", -0.0), ("num-1e300", 1e300),
    ("num-below-2p64", 18446744073709549568.0), ("num-tiny", 5e-324),
]:
    write("receive_pattern", name, pat_f64(x))
# Mode 1, a signed integer; mode 2, 2^k + d ulps; mode 3, integer + byte/256.
write("receive_pattern", "int-1024", b"\x03" + struct.pack("<q", 1024))
write("receive_pattern", "int-minus-1", b"\x03" + struct.pack("<q", -1))
write("receive_pattern", "pow2-63", b"\x05" + bytes([63, 0, 0]))
write("receive_pattern", "pow2-64-minus-ulp", b"\x05" + bytes([64, 0xff, 0]))
write("receive_pattern", "pow2-neg-32", b"\x05" + bytes([32, 0, 1]))
write("receive_pattern", "frac-10.5", b"\x07" + bytes([128]) + struct.pack("<I", 10))


# ---------------------------------------------------------------- recv_buffer
class Ops:
    """Builds a recv_buffer input; see fuzz/src/recv_buffer.rs for the format."""

    WANT = {"none": 0, "byte": 1, "last": 2, "u32": 3}

    def __init__(self):
        self.b = bytearray()

    def feed(self, data, want="none", arg=b""):
        assert len(data) < 256
        self.b += bytes([0 | self.WANT[want] << 3]) + arg + bytes([len(data)]) + data
        return self

    def synth(self, template, amount=255, want="none", arg=b""):
        assert 1 <= len(template) <= 8
        op = 1 | self.WANT[want] << 3 | (len(template) - 1) << 5
        self.b += bytes([op]) + arg + bytes([amount]) + template
        return self

    def line(self, eof=False):
        self.b += bytes([2 | (8 if eof else 0)])
        return self

    def count(self, n, eof=False):
        e = 32 if eof else 0
        if n < 256:
            self.b += bytes([3 | e, n])
        elif n < 1 << 16:
            self.b += bytes([3 | 1 << 3 | e]) + struct.pack("<H", n)
        else:
            self.b += bytes([3 | 2 << 3 | e]) + struct.pack("<I", n)[:3]
        return self

    def count_huge(self, minus=0):
        self.b += bytes([3 | 3 << 3, minus])
        return self

    def all(self, eof):
        self.b += bytes([5 if eof else 4])
        return self

    def partial(self, p, n=0):
        sel = {"line": 0, "all": 1, "bytes": 2}[p]
        self.b += bytes([6 | sel << 3]) + (bytes([n]) if p == "bytes" else b"")
        return self

    def around(self, delta):
        self.b += bytes([7, delta & 0xff])
        return self


write("recv_buffer", "lines-cr-resume",
      Ops().feed(b"a\rb").line().feed(b"c\r\nnext\nrest").line().line().line().partial("line").b)
# A failed line search remembers how far it looked; a take must forget it.
write("recv_buffer", "line-scan-resume",
      Ops().feed(b"ab").line().feed(b"\n\nzz\n").line().line().line().feed(b"q").line().count(1).line().b)
write("recv_buffer", "counts-and-all",
      Ops().feed(b"hello world").count(12).count(5).count(0).all(False).all(True).all(True).b)
write("recv_buffer", "empty-lines-and-crs",
      Ops().feed(b"\n\r\n\r\r\n\r\rx\r\n\r").line().line().line().line().line().partial("line").b)
write("recv_buffer", "partial-kinds",
      Ops().feed(b"ab\r\ncd").partial("all").feed(b"\r\r1234").partial("bytes", 3)
      .feed(b"x\ny\r\n").partial("line").line(eof=True).b)
write("recv_buffer", "counts-around-len",
      Ops().feed(b"0123456789").around(1).around(0).feed(b"abc").around(-1).around(-128).b)
write("recv_buffer", "huge-counts",
      Ops().feed(b"data").count_huge(0).count_huge(255).count(1 << 20).count(4, eof=True).b)
# receive(1000): the count fails, then reads sized to what is missing, as src/socket.rs does.
o = Ops().count(1000)
for _ in range(3):
    o.synth(b"01234567", amount=100, want="last").count(1000)
write("recv_buffer", "receive-count-loop", o.synth(b"01234567", want="last").count(1000).all(False).b)
# Stream 128 KiB (the per-input cap) of lines through while keeping a byte or two unread: the
# capacity must stay near 4 * CHUNK instead of growing with the total.
o = Ops()
for i in range(70):
    o.synth(b"line\r\n", amount=255).around(-1).line()
write("recv_buffer", "stream-keeps-memory-flat", o.b)
# Streaming with a long unconsumed tail, then draining it.
o = Ops()
for i in range(24):
    o.synth(b"abcdefg\n", amount=200).line().line()
write("recv_buffer", "stream-growing-backlog", o.line().all(True).b)
# spare(Some) sizes: 0, 1, a byte, 1 MiB + 1, usize::MAX.
write("recv_buffer", "want-sizes",
      Ops().synth(b"z", want="byte", arg=b"\x00").synth(b"z", want="byte", arg=b"\x07")
      .synth(b"z\n", want="u32", arg=struct.pack("<I", (1 << 20) + 1))
      .synth(b"\n", amount=10, want="u32", arg=struct.pack("<I", 0x80000000)).line().all(True).b)


# ---------------------------------------------------------------- until
def until(pat, stream, ops=b"", inclusive=False, letters=0):
    """An until input; see fuzz/src/until.rs for the format."""
    return bytes([len(pat) - 1, (letters << 1) | inclusive]) + pat + bytes([len(ops)]) + ops + stream


def read(n):
    return bytes([n << 1])


def call(size, timeout=False):
    return bytes([(size << 2) | (timeout << 1) | 1])


write("until", "overlap-aab", until(b"aab", b"xaaabyaab", read(1)))
write("until", "overlap-dashes", until(b"--abc", b"---abc--ab--abc-", read(3)))
write("until", "split-boundary", until(b"\r\n--b\r\n", b"part one\r\n--b\r\npart two\r\n--b\r", read(5) + read(1)))
write("until", "sized-chunks", until(b"--", b"ab--cd----e", call(2) + read(1)))
write("until", "sized-broken-match", until(b"abc", b"xabdabcabab", call(1) + read(2)))
write("until", "inclusive-sized", until(b"--", b"abc--de--", call(2) + call(0), inclusive=True))
write("until", "timeouts-keep-match", until(b"--abc", b"xx--ab--abc--a", call(0, True) + read(3) + call(0)))
write("until", "one-byte", until(b"x", b"axxbx", read(1) + call(1)))
write("until", "letters-2", until(bytes([0, 1, 0, 0, 1]), bytes(range(64)) * 4, read(7) + call(3) + call(0),
                                  letters=1))
write("until", "letters-3-inclusive", until(bytes([5, 6, 5, 6, 7]), bytes(range(200)), read(2) + call(5, True),
                                            inclusive=True, letters=2))
write("until", "long-boundary", until(b"a" * 15 + b"b", b"a" * 40 + b"b" + b"a" * 20, read(4) + call(7)))


# ---------------------------------------------------------------- dns_message
A_RESP = bytes([
    0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
    7]) + b"example" + bytes([3]) + b"com" + bytes([0, 0, 1, 0, 1,
    0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34])


def hdr(id_, flags, an, qd=1):
    return struct.pack(">HHHHHH", id_, flags, qd, an, 0, 0)


def rr(name, rtype, ttl, rdata, rclass=1):
    return name + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


EX = b"\x07example\x03com\x00"
write("dns_message", "parse-a", b"\x00" + A_RESP)
write("dns_message", "parse-cname-chain", b"\x00" + hdr(9, 0x8180, 3) + b"\x03www" + EX + b"\x00\x01\x00\x01"
      + rr(b"\xc0\x0c", 5, 300, b"\x03cdn\xc0\x10")
      + rr(b"\x03cdn\xc0\x10", 5, 60, b"\x04edge\x03NET\x00")
      + rr(b"\x04edge\x03net\x00", 1, 20, bytes([1, 2, 3, 4])))
write("dns_message", "parse-aaaa-tc-cut", b"\x00" + (hdr(4, 0x8380, 2) + EX + b"\x00\x1c\x00\x01"
      + rr(b"\xc0\x0c", 28, 5, bytes(range(16))) + rr(b"\xc0\x0c", 28, 5, bytes(range(16))))[:-3])
write("dns_message", "parse-nxdomain", b"\x00" + hdr(2, 0x8183, 0) + EX + b"\x00\x01\x00\x01")
write("dns_message", "parse-pointer-loop", b"\x00" + hdr(5, 0x8180, 0) + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01")
write("dns_message", "parse-ttl-top-bit-and-ch", b"\x00" + hdr(8, 0x8180, 2) + EX + b"\x00\x01\x00\x01"
      + rr(b"\xc0\x0c", 1, 0x80000000, bytes([9, 9, 9, 9])) + rr(b"\x00", 1, 7, b"\x01\x02\x03", rclass=3))
write("dns_message", "parse-short", b"\x00" + A_RESP[:11])


def enc(mode, id_, qtype, prefix, name):
    return bytes([mode]) + struct.pack(">HH", id_, qtype) + bytes([prefix]) + name


write("dns_message", "encode-www-example", enc(1, 0x1234, 28, 1, b"www.Example.com."))
write("dns_message", "encode-bad-double-dot", enc(1, 7, 1, 0, b"a..b"))
write("dns_message", "encode-bad-utf8", enc(1, 7, 1, 3, b"caf\xc3\xa9.\xff"))
write("dns_message", "encode-longest", enc(1, 1, 1, 0, b".".join([b"a" * 63] * 3 + [b"b" * 61])))
write("dns_message", "encode-too-long", enc(1, 1, 1, 0, b".".join([b"a" * 63] * 3 + [b"b" * 62])))
write("dns_message", "encode-label-64", enc(1, 1, 1, 0, b"x" * 64 + b".com"))
# Mode 2 names: 0x80|c + count is a run, 0xc0 a dot, else one character.
write("dns_message", "gen-label-63-64", enc(2, 3, 1, 2, bytes([0x80, 63, 0xc0, 0x81, 64])))
write("dns_message", "gen-name-253", enc(2, 3, 1, 0, bytes([0x80, 63, 0xc0] * 3 + [0x81, 61])))
write("dns_message", "gen-trailing-dot", enc(2, 3, 28, 0, bytes([7, 30, 0xc0, 60, 0xc0])))


def built(id_, ctl, qt, qname_bytes, records):
    return bytes([3]) + struct.pack(">H", id_) + bytes([ctl, qt, len(qname_bytes)]) + qname_bytes + records


A = lambda kind_extra, ttl, ip: bytes([0 << 1 | kind_extra]) + struct.pack(">I", ttl) + bytes(ip)
write("dns_message", "built-a-records", built(1, 0, 0, bytes([4, 30, 0xc0, 2]),
      A(0, 60, [1, 2, 3, 4]) + A(0, 0xffffffff, [5, 6, 7, 8])))
write("dns_message", "built-cname-aaaa-tc", built(2, 0x13, 1, bytes([1, 2]),
      bytes([2 << 1 | 8]) + struct.pack(">I", 5) + bytes([3, 1, 2, 3])  # CNAME -> literal
      + bytes([1 << 1 | 1, 3, 1, 2, 3]) + struct.pack(">I", 9) + bytes(range(16))   # AAAA at it
      + bytes([3 << 1]) + struct.pack(">I", 1) + bytes([3, 0xde, 0xad, 0])))       # type 99
write("dns_message", "built-70-records", built(3, 0, 0, bytes([5]),
      b"".join(A(0, i, [10, 0, 0, i]) for i in range(70))))

write("dns_message", "resolv-conf", b"\x04www.x\n# generated\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n"
      b"search corp.example.com. example.com corp.example.com\noptions ndots:2 timeout:0 attempts:9 rotate\n")
write("dns_message", "resolv-conf-absolute", b"\x04host.\nsearch a.com\n")
write("dns_message", "resolv-conf-garbage", b"\x04\nnameserver\noptions ndots:x timeout:-1 rotate:1\n\x00\xff junk\n")


# ---------------------------------------------------------------- regex
def rx(pattern, subject, flags="", jit=False, dfa=False, start=0):
    lo = sum(1 << "imsxuaDJ".index(c) for c in flags)
    hi = (1 if jit else 0) | (2 if dfa else 0) | start << 2
    p = pattern.encode() if isinstance(pattern, str) else pattern
    s = subject.encode() if isinstance(subject, str) else subject
    return bytes([lo, hi, len(p)]) + p + s


write("regex", "captures-unset", rx(r"(\w+) (\d+)(x)?", "hello 1234 and 56"))
write("regex", "named-dupnames", rx(r"(?<n>a)|(?<n>b)", "abba", "D", jit=True))
write("regex", "dfa-longest", rx(r"a+|a+b", "caab aaab", dfa=True))
write("regex", "dfa-workspace", rx(r"(a|b|c|d|e|f)*(a|b|c|d|e|f)*(a|b|c|d|e|f)*x", "abcdef" * 20, dfa=True))
write("regex", "empty-matches", rx(r"x*", "axxb", jit=True))
write("regex", "many-groups", rx("(a)" * 20, "a" * 25))
write("regex", "utf-bad-subject", rx(r".", b"a\xff\xfeb", "u"))
write("regex", "utf-start-inside", rx(r".", "\u00e9\u00e9", "u", start=1))
write("regex", "javascript-compat", rx(r"\u0041[]|(a)\1", "Aa", "J"))
write("regex", "lookbehind-k", rx(r"(?<=a)b\Kc", "abcabc", "x", start=2))
write("regex", "anchored-caseless", rx(r"AB", "abab", "ia"))
write("regex", "compile-error", rx(r"(a", "a"))
write("regex", "start-past-end", rx(r"$", "ab", start=63))
