#!/usr/bin/env python3
"""Packs a uftrace.data directory into one fuzz_uftrace input (the archive
fuzz_uftrace.c unpacks): for each file, u8 name length, name, u16 LE size,
the bytes. `pack_uftrace.py DIR [--max-size N] > SEED`: files larger than
N bytes (default 8192, e.g. libc's .sym) are left out, as a recording
without that module's symbols; the reader then names its addresses."""
import argparse
import os
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--max-size", type=int, default=8192)
    args = ap.parse_args()
    out = bytearray()
    for name in sorted(os.listdir(args.dir)):
        path = os.path.join(args.dir, name)
        if not os.path.isfile(path) or os.path.getsize(path) > min(args.max_size, 0xffff):
            continue
        data = open(path, "rb").read()
        raw = name.encode()
        out += struct.pack("<B", len(raw)) + raw + struct.pack("<H", len(data)) + data
    sys.stdout.buffer.write(bytes(out))


if __name__ == "__main__":
    main()
