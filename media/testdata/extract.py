#!/usr/bin/env python3
"""Extracts test vectors from files ffmpeg wrote (see gen.sh).

  extract.py record FILE.mp4 FOURCC OUT   body of the first avcC/hvcC/av1C/dOps box
  extract.py asc FILE.mp4 OUT             AudioSpecificConfig from the esds box
  extract.py sample FILE.mp4 OUT          the mdat payload (one-sample files only)
  extract.py ps KIND FILE OUT             Annex B parameter sets only (KIND h264|h265)
"""
import struct
import sys


def find_box(data, fourcc):
    i = data.find(fourcc.encode())
    while i >= 4:
        size = struct.unpack(">I", data[i - 4:i])[0]
        if 8 <= size <= len(data) - i + 4:
            return data[i + 4:i - 4 + size]
        i = data.find(fourcc.encode(), i + 1)
    raise SystemExit(f"no {fourcc} box")


def asc(data):
    esds = find_box(data, "esds")[4:]  # skip version/flags
    i = 0
    while i < len(esds):
        tag = esds[i]
        i += 1
        size = 0
        while True:
            b = esds[i]
            i += 1
            size = (size << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID, flags, then children
            flags = esds[i + 2]
            i += 3
            if flags & 0x80:
                i += 2
            if flags & 0x40:
                i += 1 + esds[i]
            if flags & 0x20:
                i += 2
        elif tag == 0x04:  # DecoderConfigDescriptor: 13 fixed bytes, then children
            i += 13
        elif tag == 0x05:
            return esds[i:i + size]
        else:
            i += size
    raise SystemExit("no DecoderSpecificInfo")


def split_annexb(data):
    nals, i, start = [], 0, None
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if start is not None:
            end = len(data) if j < 0 else j
            nals.append(data[start:end].rstrip(b"\x00"))
        if j < 0:
            return [n for n in nals if n]
        start = i = j + 3


def main():
    cmd = sys.argv[1]
    if cmd == "record":
        out = find_box(open(sys.argv[2], "rb").read(), sys.argv[3])
        dst = sys.argv[4]
    elif cmd == "asc":
        out = asc(open(sys.argv[2], "rb").read())
        dst = sys.argv[3]
    elif cmd == "sample":
        out = find_box(open(sys.argv[2], "rb").read(), "mdat")
        dst = sys.argv[3]
    elif cmd == "ps":
        kind, data = sys.argv[2], open(sys.argv[3], "rb").read()
        keep = []
        for nal in split_annexb(data):
            t = nal[0] & 0x1F if kind == "h264" else (nal[0] >> 1) & 0x3F
            if (kind == "h264" and t in (7, 8)) or (kind == "h265" and t in (32, 33, 34)):
                if nal not in keep:
                    keep.append(nal)
        out = b"".join(b"\x00\x00\x00\x01" + n for n in keep)
        dst = sys.argv[4]
    else:
        raise SystemExit(__doc__)
    open(dst, "wb").write(out)


main()
