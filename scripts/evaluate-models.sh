#!/usr/bin/env bash
# Scores the shipped models the way their model cards quote, without training them again:
#
#   scripts/evaluate-models.sh WORK [bach-chorales] [folk-melody] [bass-line] [drums]
#                                   [continuo-bass] [chorale-melody] [chorale-harmony] [groove-bass]
#                                   [keys-comping]
#
# (all of them when none is named). A model that follows the harmony plays each piece against a
# validation song's other parts (as long as the song), and its evaluations add the fit to
# the harmony; it is also scored against four progressions in styles the chorales lack, written
# as chord symbols: pop (I-V-vi-IV), jazz (ii-V-I), a 12-bar blues and minor rock (i-bVI-bIII-bVII). Writes models/NAME.eval/: defaults (the plugin's defaults,
# no scale lock), seeds-49-96 and seeds-97-144 (the same with the next 48 seeds and the 48
# after: how much the mean moves with the pieces drawn), c-major-lock (not for drums) and validation (against
# the validation songs alone), each as
# .txt (the table as printed), .json (every number) and .svg (each feature's two distributions).
# The reference is WORK/NAME-as-written, the model's music in its own keys; it is prepared from
# WORK/midi when missing (scripts/rebuild-training-data.sh WORK/midi makes that). Paths in the
# files are written as WORK/... and models/..., so they do not name this machine.
# scripts/train-models.sh runs this after each training run. CONTINUO_TRAIN=path/to/continuo-train
# uses that build instead of making a release one (a debug build scores the same numbers).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/model-recipes.sh"
read_arguments "$@"
work="$(cd "$work" && pwd)"

train="${CONTINUO_TRAIN:-}"
if [ -z "$train" ]; then
  cargo build --release -p continuo-train --manifest-path "$root/Cargo.toml"
  train="$root/target/release/continuo-train"
fi

for name in "${models[@]}"; do
  model_recipe "$name" "$work"
  reference="$work/$name-as-written"
  [ -d "$reference" ] || "$train" prepare "$source" --out "$reference" "${part[@]}"
  evals="$root/models/$name.eval"
  mkdir -p "$evals"
  runs=(defaults seeds-49-96 seeds-97-144 c-major-lock validation)
  [[ " ${part[*]} " == *" --against "* ]] && runs+=(pop-I-V-vi-IV jazz-ii-V-I blues-12-bar minor-i-bVI-bIII-bVII)
  for run in "${runs[@]}"; do
    # A kit has no key: a scale lock does not apply to drums.
    [ "$name" = drums ] && [ "$run" = c-major-lock ] && continue
    case "$run" in
      defaults) flags=() ;;
      seeds-49-96) flags=(--seed 49) ;;
      seeds-97-144) flags=(--seed 97) ;;
      c-major-lock) flags=(--key C --scale major) ;;
      validation) flags=(--reference validation) ;;
      pop-I-V-vi-IV) flags=(--harmony "C G Am F") ;;
      jazz-ii-V-I) flags=(--harmony "Dm7 G7 Cmaj7 Cmaj7") ;;
      blues-12-bar) flags=(--harmony "F7 Bb7 F7 F7 Bb7 Bb7 F7 F7 C7 Bb7 F7 C7") ;;
      minor-i-bVI-bIII-bVII) flags=(--harmony "Am F C G") ;;
    esac
    "$train" eval "$root/models/$name.onnx" "$reference" "${flags[@]}" --json "$evals/$run.json" \
      > "$evals/$run.txt"
    sed -i -e "s|$work/|WORK/|g" -e "s|$root/||g" "$evals/$run.txt" "$evals/$run.json"
    cat "$evals/$run.txt"
  done
done
