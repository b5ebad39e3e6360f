#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/corpus/<target>/, gitignored).

car_reader gets the small golden CARs (py-hamt's, from tests/golden/cars);
node_decode gets every dag-cbor block of those CARs (prefixed with the bucket-limit byte) and
a few hand-made nodes. The other targets parse structured input and start from a few bytes.
"""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.environ.get("IPFS_HAMT_GOLDEN") or os.path.join(ROOT, "..", "tests", "golden")


def varint(buf, pos):
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, pos


def car_blocks(data):
    hlen, pos = varint(data, 0)
    pos += hlen
    while pos < len(data):
        slen, pos = varint(data, pos)
        end = pos + slen
        p = pos
        version, p = varint(data, p)
        codec, p = varint(data, p)
        _, p = varint(data, p)
        dlen, p = varint(data, p)
        p += dlen
        yield codec, data[p:end]
        pos = end


def write(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    empty_node = bytes([0x99, 0x01, 0x00]) + b"\xa0" * 256
    write("node_decode", "empty", b"\x03" + empty_node)
    cid_raw = bytes([0x01, 0x55, 0x1E, 0x20]) + bytes(range(32))
    cid_item = bytes([0xD8, 0x2A, 0x58, len(cid_raw) + 1, 0x00]) + cid_raw
    bucket = b"\xa2\x61a" + cid_item + b"\x61b" + cid_item
    write("node_decode", "bucket", b"\x03" + bytes([0x99, 0x01, 0x00]) + bucket + b"\xa0" * 255)
    cid_node = bytes([0x01, 0x71, 0x1E, 0x20]) + bytes(range(32))
    link = b"\x81" + bytes([0xD8, 0x2A, 0x58, len(cid_node) + 1, 0x00]) + cid_node
    write("node_decode", "link", b"\x03" + bytes([0x99, 0x01, 0x00]) + link + b"\xa0" * 255)
    cars = os.path.join(GOLDEN, "cars")
    if os.path.isdir(cars):
        n = 0
        for name in sorted(os.listdir(cars)):
            path = os.path.join(cars, name)
            if os.path.getsize(path) > 16384:
                continue
            data = open(path, "rb").read()
            write("car_reader", name, data)
            for codec, block in car_blocks(data):
                if codec == 0x71 and n < 64:
                    write("node_decode", f"golden{n}", b"\x03" + block)
                    n += 1
    else:
        print(f"no golden CARs at {cars}; car_reader starts from scratch", file=sys.stderr)
    for t in ("unixfs_read", "crypt_decode", "zarr_keys", "car_reader"):
        write(t, "zero", b"\x00" * 16)


main()
