#!/usr/bin/env bash
# Rebuilds the public-domain training MIDI from the packages it comes from, so the shipped
# models can be reproduced without any copy of the data:
#
#   scripts/rebuild-training-data.sh OUT
#
# OUT/bach   408 Bach chorales: music21 10.5.1's corpus (MusicXML), written as MIDI by music21.
# OUT/folk   4,433 fiddle and folk tunes: the ABC files in the same package, through abc2midi
#            (Debian's abcmidi) with no -o, one MIDI file per tune:
#            ryans/ (Ryan's Mammoth Collection), oneills1850/ (O'Neill's), airdsAirs/ (Aird's
#            Airs), miscFolk/.
#
# CONTINUO_DATA_ONLY="bach" or "folk" rebuilds one set.
#
# The files it writes are byte-identical to the ones the shipped models were trained on.
#
# Needs python3 with venv, network access to PyPI, and abc2midi (installed with apt-get when
# missing and running as root). music21's essenFolksong and palestrina are left out on purpose:
# their licences do not allow shipping models trained on them.
set -euo pipefail
out="${1:?usage: scripts/rebuild-training-data.sh OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
venv="${CONTINUO_DATA_VENV:-$out/.venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet music21==10.5.1
fi
if ! command -v abc2midi > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq abcmidi > /dev/null
  else
    echo "abc2midi is missing: install Debian's abcmidi package (sudo apt-get install abcmidi)" >&2
    exit 1
  fi
fi

only="${CONTINUO_DATA_ONLY:-bach folk}"
corpus="$("$venv/bin/python" -c 'import music21, pathlib; print(pathlib.Path(music21.__file__).parent / "corpus")')"

if [[ " $only " == *" bach "* ]]; then
echo "Bach chorales -> $out/bach"
mkdir -p "$out/bach"
"$venv/bin/python" - "$out/bach" <<'PY'
import sys, pathlib
from music21 import corpus
out = pathlib.Path(sys.argv[1])
paths = [pathlib.Path(p) for p in corpus.getComposer("bach") if str(p).endswith(".mxl")]
failed = 0
for i, path in enumerate(paths, 1):
    try:
        corpus.parse(str(path)).write("midi", fp=str(out / (path.stem + ".mid")))
    except Exception as error:  # report and go on: one bad score must not stop the rest
        failed += 1
        print(f"  {path.name}: {error}", file=sys.stderr)
    if i % 50 == 0:
        print(f"  {i}/{len(paths)}", flush=True)
print(f"  {len(paths) - failed} of {len(paths)} converted")
PY
fi

[[ " $only " == *" folk "* ]] || exit 0
# from:to:naming. Ryan's Mammoth holds one tune a file, named after the file; the other
# collections hold many tunes a file, named by abc2midi after the file and the tune's X: number.
for spec in ryansMammoth:ryans:file oneills1850:oneills1850:tune airdsAirs:airdsAirs:tune miscFolk:miscFolk:tune; do
  IFS=: read -r from to naming <<< "$spec"
  echo "folk tunes from $from -> $out/folk/$to"
  mkdir -p "$out/folk/$to"
  # abc2midi writes its files next to the .abc it reads, so it reads a copy in a scratch folder.
  (cd "$out/folk/$to" && for abc in "$corpus/$from"/*.abc; do
    stem="$(basename "$abc" .abc)"
    tmp="$(mktemp -d ./.abc.XXXXXX)"
    cp "$abc" "$tmp/" && (cd "$tmp" && abc2midi "$stem.abc" > /dev/null 2>&1 || true)
    made=("$tmp"/*.mid)
    if [ "$naming" = file ] && [ "${#made[@]}" = 1 ] && [ -e "${made[0]}" ]; then
      mv "${made[0]}" "$stem.mid"
    elif [ -e "${made[0]}" ]; then
      mv "${made[@]}" .
    fi
    rm -rf "$tmp"
  done)
  echo "  $(find "$out/folk/$to" -name '*.mid' | wc -l) files"
done
