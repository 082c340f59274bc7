# The shipped models' recipes, for scripts/train-models.sh and scripts/evaluate-models.sh to
# source: `model_recipe NAME WORK` sets `display` (the model's name in the plugin), `source` (its
# MIDI, in WORK/midi), `part` (prepare's flags), `same_key` (prepare's key handling), `recipe` (train's flags beyond the ones every
# model shares) and `tuning` (tune's flags: the defaults it plays by, chosen with eval on three
# sets of 48 seeds for the best variety at a mean OA of 0.85 or more; see its card), or fails on
# a name it does not know. `shipped_models` names them all;
# `read_arguments "$@"` reads both scripts' arguments.
shipped_models=(bach-chorales folk-melody bass-line drums continuo-bass chorale-melody chorale-harmony
  groove-bass keys-comping)

# A script's arguments, WORK [NAME...]: sets `work` (as given) and `models` (the names given, or
# every shipped model), or fails with the calling script's usage line.
read_arguments() {
  work="${1:?usage: scripts/$(basename "$0") WORK [${shipped_models[*]}]}"
  shift
  models=("$@")
  [ ${#models[@]} -gt 0 ] || models=("${shipped_models[@]}")
}

model_recipe() {
  # prepare's key handling: every file moved into C, remembering its own key (train then uses
  # --keys as-written); the models that follow the harmony learn each song as written and are
  # transposed at random, the harmony with them.
  same_key=(--same-key)
  case "$1" in
    bach-chorales)
      display="Bach chorales"; source="$2/midi/bach"; part=()
      recipe=(--layers 2 --hidden 128 --seq 128 --batch 32 --steps 6000 --dropout 0.1 --keys as-written)
      tuning=(--temperature 0.6 --rhythm-temperature 0.8 --top-p 0.8) ;;
    folk-melody)
      display="Folk melody"; source="$2/midi/folk"; part=()
      recipe=(--layers 2 --hidden 128 --seq 128 --batch 32 --steps 8000 --dropout 0.1 --keys as-written)
      tuning=(--temperature 0.9 --rhythm-temperature 0.6 --top-p 0.9 --voices 2) ;;
    bass-line)
      display="Bass line"; source="$2/midi/bach"; part=(--part lowest)
      recipe=(--layers 1 --hidden 128 --seq 256 --batch 16 --steps 3000 --dropout 0.2 --keys all --transpose 6)
      tuning=(--temperature 0.8 --rhythm-temperature 1.0 --top-p 0.9) ;;
    drums)
      # The MMA grooves' drum kits: scripts/build-groove-collection.sh WORK/grooves makes them.
      display="Drums"; source="$2/grooves"; part=(--family drums)
      recipe=(--layers 2 --hidden 128 --seq 256 --batch 16 --steps 4000 --dropout 0.1)
      tuning=(--temperature 0.6 --rhythm-temperature 0.8 --top-p 0.8) ;;
    # The three that follow the harmony: a part of each chorale learned against the others
    # (prepare --against others; train hears their pitch classes, see continuo-bass.md).
    continuo-bass)
      display="Continuo bass"; source="$2/midi/bach"; part=(--part lowest --against others); same_key=()
      recipe=(--layers 1 --hidden 128 --seq 256 --batch 16 --steps 3000 --dropout 0.2 --keys all --transpose 6)
      tuning=(--temperature 0.6 --rhythm-temperature 0.8 --top-p 0.8) ;;
    chorale-melody)
      display="Melody over chords"; source="$2/midi/bach"; part=(--part highest --against others); same_key=()
      recipe=(--layers 1 --hidden 128 --seq 256 --batch 16 --steps 3000 --dropout 0.2 --keys all --transpose 6)
      tuning=(--temperature 0.6 --rhythm-temperature 0.8 --top-p 0.8) ;;
    chorale-harmony)
      display="Harmony under a melody"; source="$2/midi/bach"; part=(--part lower --against others); same_key=()
      recipe=(--layers 2 --hidden 128 --seq 128 --batch 32 --steps 4000 --dropout 0.1 --keys all --transpose 6)
      tuning=(--temperature 0.5 --rhythm-temperature 0.6 --top-p 0.8 --voices 3) ;;
    # The grooves' bass against their other melodic parts, learned on the groove grid (MMA
    # plays with random timing), in 4/4 only, hearing where the clock stands in the bar (see
    # groove-bass.md: without the meter it lost the beat).
    groove-bass)
      display="Groove bass"; source="$2/grooves"; part=(--family bass --against others --on-the-grid --meter 4/4); same_key=()
      recipe=(--layers 1 --hidden 128 --seq 256 --batch 16 --steps 4000 --dropout 0.2 --keys all --transpose 6
        --harmony pitch-classes-and-meter)
      tuning=(--temperature 0.7 --rhythm-temperature 1.0 --top-p 0.9) ;;
    # The grooves' pianos, the same way. One layer: two layers of 128 learned MMA's piano
    # patterns by heart (see keys-comping.md).
    keys-comping)
      display="Keys comping"; source="$2/grooves"; part=(--family piano --against others --on-the-grid --meter 4/4); same_key=()
      recipe=(--layers 1 --hidden 128 --seq 256 --batch 16 --steps 4000 --dropout 0.2 --keys all --transpose 6
        --harmony pitch-classes-and-meter)
      tuning=(--temperature 0.5 --rhythm-temperature 0.6 --top-p 0.7) ;;
    *) echo "unknown model $1 (${shipped_models[*]})" >&2; return 2 ;;
  esac
}
