#!/usr/bin/env python3
"""Builds a folder tree the size and shape of the Lakh MIDI Dataset from the MIDI files you have,
to measure `continuo-train prepare` and `train` at that scale.

    scripts/make-lakh-sized-tree.py SOURCE_DIR... --out TREE [--files 176581] [--seed 1]

The Lakh MIDI Dataset (lmd_full) holds 176,581 files named by their MD5 in 16 folders (0-9, a-f);
a few thousand are damaged, some are over 1 MB. This tree copies the source files under such
names (and some under the nested artist/album names and the letter cases other collections use),
and makes on purpose, out of the same sources:
  - 1 in 100 a large file: a format-1 file repeating the source's tracks past 1 MB;
  - 2 in 100 a damaged one, in turn: cut short, header overwritten, emptied, a track chunk
    claiming more bytes than the file has, or a run of random bytes over its events.
Deterministic for a seed. Prints what it wrote, by kind. Standard library only.
"""
import argparse
import hashlib
import os
import random
import struct
import sys

LAKH_FILES = 176_581
MIDI_ENDINGS = (".mid", ".midi", ".kar", ".smf")


def sources(folders):
    found = []
    for folder in folders:
        for root, _, names in os.walk(folder):
            found += [os.path.join(root, n) for n in names if n.lower().endswith(MIDI_ENDINGS)]
    return sorted(found)


def chunks(data):
    """(kind, body) of each chunk after the header, as far as they are whole."""
    at = 14
    while at + 8 <= len(data):
        kind, length = data[at:at + 4], struct.unpack(">I", data[at + 4:at + 8])[0]
        yield kind, data[at + 8:at + 8 + length]
        at += 8 + length


def large(data):
    """A format-1 file of the source's tracks, repeated until it passes 1 MB."""
    division = data[12:14]
    tracks = [body for kind, body in chunks(data) if kind == b"MTrk"]
    out, count = [], 0
    while sum(len(t) + 8 for t in out) < 1_100_000 and tracks:
        out.append(tracks[count % len(tracks)])
        count += 1
    header = b"MThd" + struct.pack(">IHH", 6, 1, len(out)) + division
    return header + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in out)


def damaged(data, kind, rng):
    if kind == "cut short":
        return data[: rng.randrange(4, max(5, len(data) - 1))]
    if kind == "header overwritten":
        return bytes(rng.randrange(256) for _ in range(14)) + data[14:]
    if kind == "emptied":
        return b""
    if kind == "chunk past the end":
        # The first track claims far more bytes than the file holds.
        return data[:18] + struct.pack(">I", len(data) * 4 + 1000) + data[22:]
    if kind == "random bytes in events":
        at = rng.randrange(22, max(23, len(data) - 64))
        return data[:at] + bytes(rng.randrange(256) for _ in range(64)) + data[at + 64:]
    raise ValueError(kind)


DAMAGE = ["cut short", "header overwritten", "emptied", "chunk past the end", "random bytes in events"]


def name_for(i, rng):
    """Lakh's MD5 names in 16 folders, and now and then another collection's habits."""
    digest = hashlib.md5(f"continuo-{i}".encode()).hexdigest()
    roll = rng.random()
    if roll < 0.9:
        return os.path.join("lmd_full", digest[0], digest + ".mid")
    if roll < 0.95:
        return os.path.join("by artist", f"Artist {i % 997}", f"Album {i % 13}", f"Song {i} (take 2).MID")
    if roll < 0.98:
        return os.path.join("karaoke", digest[:2], digest + ".kar")
    return os.path.join("Deep", "nested", digest[0], digest[1], digest[2], digest + ".midi")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="folders of MIDI files to copy from")
    parser.add_argument("--out", required=True, help="the tree to write (must not exist)")
    parser.add_argument("--files", type=int, default=LAKH_FILES, help=f"how many files (default {LAKH_FILES})")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    files = sources(args.sources)
    if not files:
        sys.exit(f"no MIDI files under {' '.join(args.sources)}")
    if os.path.exists(args.out):
        sys.exit(f"{args.out}: already exists; choose a new folder")
    rng = random.Random(args.seed)
    blobs = [open(f, "rb").read() for f in files]
    counts, total_bytes = {}, 0
    for i in range(args.files):
        data = blobs[i % len(blobs)]
        roll = rng.random()
        if roll < 0.02:
            kind = DAMAGE[i % len(DAMAGE)]
            data = damaged(data, kind, rng)
        elif roll < 0.03 and data[:4] == b"MThd":
            kind = "large"
            data = large(data)
        else:
            kind = "copy"
        path = os.path.join(args.out, name_for(i, rng))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        counts[kind] = counts.get(kind, 0) + 1
        total_bytes += len(data)
        if (i + 1) % 20_000 == 0:
            print(f"  {i + 1} files", file=sys.stderr)
    print(f"{args.files} files, {total_bytes / 1e6:.0f} MB, from {len(files)} sources, in {args.out}")
    for kind, count in sorted(counts.items()):
        print(f"  {count:>7} {kind}")


if __name__ == "__main__":
    main()
