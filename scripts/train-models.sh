#!/usr/bin/env bash
# Trains the models that ship with the plugin, exactly as their model cards say, and scores
# them the way the cards quote:
#
#   scripts/train-models.sh WORK [bach-chorales] [folk-melody] [bass-line] [drums]
#                                [continuo-bass] [chorale-melody] [chorale-harmony] [groove-bass]
#                                [keys-comping]
#
# (all of them when none is named). In WORK:
#   midi/             the training MIDI: scripts/rebuild-training-data.sh WORK/midi, run first
#                     when missing (needs PyPI and abc2midi; the files are byte-identical)
#   grooves/          the drums', groove bass's and keys comping's multi-instrument collection: scripts/build-groove-collection.sh
#                     WORK/grooves, run first when missing (needs mma)
#   NAME-data/        what the model learns from: `prepare --same-key` (every file moved into
#                     the key signature of C, remembering its own key), or for the models that
#                     follow the harmony `prepare --against others`, as written
#   NAME-as-written/  the same music in its own keys: the reference `eval` scores the model's
#                     music against, and whose validation songs give the held-out NLL
#   NAME-run/         the training run
# and in models/: NAME.onnx, NAME-loss.svg (the loss curve) and NAME.eval/ (the evaluations,
# by scripts/evaluate-models.sh: at the plugin's defaults and with two more sets of seeds, with a
# C major scale lock, against the validation songs alone).
#
# Builds continuo-train (release) first. Each model trains on both cores; the first three take
# about 40 minutes on a 2-core machine, the drums 21, the three that follow the chorales' harmony about
# 20, the groove bass 7, the keys comping 5.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/model-recipes.sh"
read_arguments "$@"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

cargo build --release -p continuo-train --manifest-path "$root/Cargo.toml"
train="$root/target/release/continuo-train"
[ -d "$work/midi/bach" ] && [ -d "$work/midi/folk" ] || "$root/scripts/rebuild-training-data.sh" "$work/midi"
if [[ " ${models[*]} " =~ " "(drums|groove-bass|keys-comping)" " ]] && [ ! -d "$work/grooves" ]; then
  "$root/scripts/build-groove-collection.sh" "$work/grooves"
fi

# The network every model shares: an embedding of 64, a dense layer of 128, and the run's
# schedule; each model adds its own below.
common=(--embed 64 --dense 128 --eval-every 250 --threads 2 --seed 1337)

for name in "${models[@]}"; do
  model_recipe "$name" "$work"
  echo "== $display"
  rm -rf "$work/$name-data" "$work/$name-as-written" "$work/$name-run"
  "$train" prepare "$source" --out "$work/$name-data" "${part[@]}" "${same_key[@]}"
  "$train" prepare "$source" --out "$work/$name-as-written" "${part[@]}"
  "$train" train "$work/$name-data" --out "$work/$name-run" "${common[@]}" "${recipe[@]}"
  "$train" export "$work/$name-run" --out "$root/models/$name.onnx" --name "$display"
  "$train" tune "$root/models/$name.onnx" "${tuning[@]}"
  cp "$work/$name-run/loss.svg" "$root/models/$name-loss.svg"
  "$root/scripts/evaluate-models.sh" "$work" "$name"
done
