#!/usr/bin/env python3
"""Rewrites the SPS of a one-IDR-frame HEVC Annex B stream with extra reference picture
sets: short-term sets using inter-RPS prediction (chained, with entries whose
use_delta_flag is 0, so a parser that gets a set's NumDeltaPocs wrong misreads the next
set) and long-term reference pictures. IDR slices do not refer to these sets, so the stream still decodes
to the same pictures; ffmpeg's parse of the new SPS is the reference (see gen.sh).

usage: hevc_rps.py IN.h265 OUT.h265
"""
import sys


def unescape(b):
    out, zeros = bytearray(), 0
    for x in b:
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        zeros = zeros + 1 if x == 0 else 0
        out.append(x)
    return bytes(out)


def escape(b):
    out, zeros = bytearray(), 0
    for x in b:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        zeros = zeros + 1 if x == 0 else 0
        out.append(x)
    return bytes(out)


class Reader:
    def __init__(self, data):
        self.bits = "".join(f"{x:08b}" for x in data)
        self.pos = 0

    def u(self, n):
        v = int(self.bits[self.pos:self.pos + n] or "0", 2)
        self.pos += n
        return v

    def ue(self):
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self):
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def ue(v):
    s = bin(v + 1)[2:]
    return "0" * (len(s) - 1) + s


def split(data):
    parts = data.split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts if p.rstrip(b"\x00")]


def rewrite_sps(nal):
    r = Reader(unescape(nal[2:]))
    r.u(4)
    max_sub = r.u(3)
    r.u(1)
    r.u(88)
    r.u(8)
    assert max_sub == 0, "sub-layers not handled"
    r.ue()
    chroma = r.ue()
    if chroma == 3:
        r.u(1)
    r.ue()
    r.ue()
    if r.u(1):
        for _ in range(4):
            r.ue()
    r.ue()
    r.ue()
    log2_poc = r.ue() + 4
    r.u(1)
    for _ in range(3):
        r.ue()
    for _ in range(6):
        r.ue()
    if r.u(1):
        assert r.u(1) == 0, "explicit scaling lists not handled"
    r.u(2)
    assert r.u(1) == 0, "PCM not handled"
    start = r.pos
    n = r.ue()
    assert n == 0, "input already has short-term RPS in its SPS"
    assert r.u(1) == 0, "input already has long-term refs"
    end = r.pos
    rps = ue(5)
    # set 0: S0 = [-1, -3], S1 = [2]
    rps += ue(2) + ue(1) + ue(0) + "1" + ue(1) + "0" + ue(1) + "1"
    # set 1: inter, deltaRps = -1, flags for 4 entries -> S0 = [-1, -2, -4]
    rps += "1" + "1" + ue(0) + "1" + "01" + "00" + "1"
    # set 2: inter, deltaRps = +3 -> S0 = [-1], S1 = [1, 2, 3]
    rps += "1" + "0" + ue(2) + "1111"
    # set 3: inter, deltaRps = -3 over 4 + 1 entries -> S0 = [-1, -2, -3, -4], S1 = []
    # (the +3 + -3 = 0 entry is not used: use_delta_flag 0)
    rps += "1" + "1" + ue(2) + "11" + "1" + "00" + "1"
    # set 4: explicit, S0 = [-1]
    rps += "0" + ue(1) + ue(0) + ue(0) + "1"
    # long-term: 2 pictures
    lt = "1" + ue(2) + format(5, f"0{log2_poc}b") + "1" + format(9, f"0{log2_poc}b") + "0"
    bits = r.bits[:start] + rps + lt + r.bits[end:]
    bits = bits[: bits.rindex("1")] + "1"
    bits += "0" * (-len(bits) % 8)
    body = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    return nal[:2] + escape(body)


def main():
    data = open(sys.argv[1], "rb").read()
    out = b""
    for nal in split(data):
        if (nal[0] >> 1) & 0x3F == 33:
            nal = rewrite_sps(nal)
        out += b"\x00\x00\x00\x01" + nal
    open(sys.argv[2], "wb").write(out)


main()
