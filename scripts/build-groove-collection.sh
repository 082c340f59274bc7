#!/usr/bin/env bash
# Builds a multi-instrument General MIDI collection in many popular styles from a public
# package, in the shape of the Lakh MIDI Dataset's files (a drum kit on channel 10 beside bass,
# chord comping, arpeggios, walking bass, strings, horns), so that models of drums and of
# whole bands can be trained and reproduced without any copy of the data:
#
#   scripts/build-groove-collection.sh OUT [--limit N]
#
# Source: Debian's `mma` package (Musical MIDI Accompaniment 21.09, GPL-2-or-later, by Bob van
# der Poel and the library authors the files name). Its library, /usr/share/mma/lib, holds
# 1,993 DefGroove lines (1,988 grooves once five redefinitions are counted once) in 277 files:
# stdlib/ (MMA's own), casio/ (rhythms converted from a Casio WK-3000), yamaha/ (converted
# from Yamaha style files), kara/ (Kara Music Production), pflib/ (Peter Falk), zoom/
# (drum-only patterns; those files name no author), alexis/ (Alexis Archambault). Each groove
# is a drum kit with, in most, bass, chords and more; its variations (Sus: sustained strings,
# Plus: a solo or arpeggio line, 1/2/A/B: other patterns, Walk: walking bass, ...) and its
# intros, fills and endings are grooves too.
#
# What it writes, from scripts/groove-collection.py (python3's standard library and mma):
#   OUT/<style family>/<library>-<groove>.mid   one song a main groove, 1,209 with the
#       extra takes described below;
#       families: rock pop ballad jazz-swing blues latin country-folk waltz march-polka
#       funk-soul-rnb electronic reggae-ska other
#   OUT/manifest.json   each song's grooves, progression, key, tempo, bars and seed; grooves
#                       that failed, and those left out (count-ins and the empty groove)
#   OUT/stats.txt, OUT/stats.json   files, hours, notes per GM instrument family (by the
#                       program in force on each channel; channel 10 is drums) and drum notes
#                       per GM kit piece
#   OUT/.mma/           the MMA song file each MIDI file was rendered from
#
# Each song: the groove's intro (its own length, at most 8 bars) over the progression's last
# bars, which lead into its first; the progression repeated to at least 32 bars, the last bar
# of every pass but the final one played by one of the groove's fills (its own length, at most
# 2); then the tonic under an ending (its own length, at most 4), or one bar of the groove when
# its file has no ending. Intros, fills and endings are taken in turn from the groove's own
# file (one of the same metre); while a file has more of them than main grooves, its main
# grooves play again (OUT/<family>/<library>-<groove>-2.mid ...) so that every groove plays
# at least once; zoom's intro and ending sets serve all of zoom's patterns. 32 bars is the
# length of a standard song form (AABA), long enough for a fill, an intro and an ending to
# come around, short enough that 1,209 songs stay near a day of music.
#
# Progressions (in scripts/groove-collection.py), each family taking its own in turn: the pop
# I-V-vi-IV, doo-wop I-vi-IV-V, mixolydian I-bVII-IV, minor i-bVI-bIII-bVII, Andalusian
# i-bVII-bVI-V, 12-bar blues, minor blues, major and minor ii-V-I, I-vi-ii-V, folk I-IV-V,
# minor i-iv-V, and two charts MMA ships: its tutorial's 16 bars (examples/tutorial) and the
# 16-bar bossa nova it wrote for its Aria demo (examples/aria/bossa.mma). No chart of a
# published song is used. Keys: C G D A E F Bb Eb in turn (Transpose, -5..+6 semitones, so that
# no bass or chord range moves by more than half an octave).
#
# Tempo: what the groove's library file says (a tempo in its notes, or its own Tempo line:
# 19 files), else the usual tempo of its style, counted in the beats MMA writes the groove
# in: a 2/4 style written in 4 at twice its felt tempo where the notes ask for it (polka,
# Sousa march, samba, ska), a 6/8 style written in 6 in eighth notes, a 12/8 style written in 4
# in dotted quarters. The table is STYLES in scripts/groove-collection.py.
#
# Randomness: MMA's random choices (Plus solos, random timing and skips) use RndSeed, set in
# each song to the CRC-32 of its output path, and mma runs with PYTHONHASHSEED=0; the same
# package version writes byte-identical files.
#
# --limit N renders N songs spread evenly over the whole plan (a quick check);
# CONTINUO_GROOVE_LIBS="stdlib,yamaha" renders some libraries only.
#
# Measured (mma 21.09, a 2-core VM, nice -n 19): 1,209 files, 246 of them drums only (zoom's),
# 26.28 hours, 1,618,703 notes, 37.2% of them drums; 1,979 of the 1,988 grooves play (the
# eight count-ins and the empty groove are left out), none failed; 140 s in all.
#
# Needs python3 and mma (installed with apt-get when missing and running as root).
# hydrogen-data's seven demo songs (GPL-2-or-later too) are not included: they are in
# Hydrogen's own .h2song format, which would need a reader of its own for seven songs.
set -euo pipefail
usage="usage: scripts/build-groove-collection.sh OUT [--limit N]"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ] || [ $# = 0 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  [ $# = 0 ] && { echo "$usage" >&2; exit 2; }
  exit 0
fi
out="$1"
shift
limit=()
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) limit=(--limit "${2:?$usage}"); shift 2 ;;
    --limit=*) limit=(--limit "${1#--limit=}"); shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

if ! command -v mma > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends mma > /dev/null
  else
    echo "mma is missing: install Debian's mma package (sudo apt-get install mma)" >&2
    exit 1
  fi
fi
echo "$(mma -v 2>&1 | grep -v PLUGIN | head -n 1)"
mkdir -p "$out"
exec python3 "$(dirname "$0")/groove-collection.py" "$out" "${limit[@]}" \
  --libraries "${CONTINUO_GROOVE_LIBS:-stdlib,casio,kara,pflib,yamaha,zoom,alexis}"
