#!/usr/bin/env bash
# Speed of `continuo-train prepare` against Python's pretty_midi on the same MIDI files.
#
#   scripts/bench-prepare.sh DIR...      (e.g. the folders scripts/rebuild-training-data.sh writes)
#
# pretty_midi runs as the classic recipe ran it: one process, PrettyMIDI(path) for every file,
# then the notes of every instrument. continuo-train reads, encodes to tokens and writes shards,
# on all cores and on one. Prints a table; needs python3 with venv and network access to PyPI
# for the first run.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

venv="${CONTINUO_BENCH_VENV:-$root/target/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pretty_midi==0.2.11
fi
# The bench profile: optimised like release, without the link-time optimisation bundles get.
cargo build --quiet --profile bench -p continuo-train
bin="$root/target/release/continuo-train"

files=$(find "$@" -type f \( -iname '*.mid' -o -iname '*.midi' -o -iname '*.kar' -o -iname '*.smf' \) | wc -l)

best_of_3() { # prints the best wall time in seconds of three runs of "$@"
  local best=""
  for _ in 1 2 3; do
    rm -rf "$work/out"
    local start end
    start=$(date +%s.%N); "$@" > /dev/null 2>&1; end=$(date +%s.%N)
    best=$(python3 -c "t=$end-$start; b='$best'; print(min(t, float(b)) if b else t)")
  done
  echo "$best"
}

rust_all=$(best_of_3 "$bin" prepare "$@" --out "$work/out")
rust_one=$(RAYON_NUM_THREADS=1 best_of_3 "$bin" prepare "$@" --out "$work/out")
python_time=$("$venv/bin/python" - "$@" <<'PY'
import sys, time, pathlib, warnings
import pretty_midi
warnings.simplefilter("ignore")
paths = [p for d in sys.argv[1:] for p in sorted(pathlib.Path(d).rglob("*"))
         if p.is_file() and p.suffix.lower() in (".mid", ".midi", ".kar", ".smf")]
start = time.perf_counter()
notes = 0
for p in paths:
    try:
        pm = pretty_midi.PrettyMIDI(str(p))
        notes += sum(len(i.notes) for i in pm.instruments)
    except Exception:
        pass
print(time.perf_counter() - start)
PY
)

python3 - "$files" "$python_time" "$rust_one" "$rust_all" "$(nproc)" <<'PY'
import sys
files, py, one, allc, cores = int(sys.argv[1]), *map(float, sys.argv[2:5]), sys.argv[5]
print(f"{files} MIDI files")
print(f"{'reader':<44} {'seconds':>8} {'files/s':>9} {'vs pretty_midi':>15}")
for name, t in [("pretty_midi (parse + notes, 1 process)", py),
                ("continuo-train prepare, 1 thread", one),
                (f"continuo-train prepare, {cores} threads", allc)]:
    print(f"{name:<44} {t:>8.2f} {files / t:>9.0f} {py / t:>14.1f}x")
PY
