#!/usr/bin/env python3
"""Training speed side by side: continuo-train against Keras on TensorFlow, same network, same
batch, same data, same threads, in one run.

    scripts/bench-training.py DATASET [--rounds 3] [--threads 1 2] [--venv DIR]

DATASET is a folder written by `continuo-train prepare`. For each round and each thread count
the script trains the network once with continuo-train and once with the Keras reference
(scripts/keras-reference.py), alternating, so that a machine that slows down or speeds up over
the run touches both alike. Each run does --warmup steps untimed and --steps steps timed; the
table gives the median tokens per second of the rounds and their range, and what each run
reached against the sgemm throughput continuo-train measures on the machine at start.

The two sides measure the same thing: tokens per second of training steps (forward, backward,
clipping, AdamW), batch x seq tokens a step, validation and checkpoints left out.

TensorFlow: --python runs the reference with that interpreter; otherwise --venv DIR (default
~/.cache/continuo/tf-venv) is created if missing with the versions this was measured with
(tensorflow==2.21.0, which brings keras 3.15), from PyPI.

continuo-train: --trainer (default target/release/continuo-train; build it with
`cargo build --release -p continuo-train`).
"""
import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TENSORFLOW = "tensorflow==2.21.0"


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", help="dataset folder written by `continuo-train prepare`")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs of each side per thread count (default 3)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare (default 1 2)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before the timed ones (default 20)")
    p.add_argument("--steps", type=int, default=100, help="timed steps per run (default 100)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dense", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--trainer", default=str(ROOT / "target/release/continuo-train"), help="the continuo-train binary")
    p.add_argument("--python", help="a Python with TensorFlow installed (else --venv)")
    p.add_argument("--venv", default=str(Path.home() / ".cache/continuo/tf-venv"),
                   help="virtualenv for TensorFlow, created when missing (default ~/.cache/continuo/tf-venv)")
    return p.parse_args()


def tensorflow_python(args):
    if args.python:
        return args.python
    python = Path(args.venv) / "bin/python"
    if not python.exists():
        print(f"creating {args.venv} with {TENSORFLOW} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", args.venv], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", TENSORFLOW], check=True)
    return str(python)


def network(args):
    return ["--layers", str(args.layers), "--hidden", str(args.hidden), "--embed", str(args.embed),
            "--dense", str(args.dense), "--batch", str(args.batch), "--seq", str(args.seq)]


def run_continuo(args, threads, scratch):
    """Tokens per second of the timed steps, and the sgemm throughput the trainer measured."""
    run = Path(scratch) / f"continuo-{threads}"
    shutil.rmtree(run, ignore_errors=True)
    # One metrics row per --warmup steps (the first is the warm-up), then rows every `every`
    # steps over the timed ones.
    every = args.warmup
    timed = -(-args.steps // every) * every
    command = [args.trainer, "train", args.dataset, "--out", str(run), *network(args),
               "--steps", str(args.warmup + timed), "--eval-every", str(every), "--eval-tokens", "4096",
               "--threads", str(threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    sgemm = float(re.search(r"sgemm on this machine: ([\d.]+) GFLOP/s", out).group(1)) * 1e9
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))[1:]
    tokens_per_row = every * args.batch * args.seq
    seconds = sum(tokens_per_row / float(r["tokens_per_second"]) for r in rows)
    shutil.rmtree(run, ignore_errors=True)
    return tokens_per_row * len(rows) / seconds, sgemm


def run_keras(args, python, threads):
    command = [python, str(ROOT / "scripts/keras-reference.py"), args.dataset, *network(args),
               "--threads", str(threads), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    last = [line for line in out.splitlines() if line.startswith("keras tokens_per_second=")][-1]
    fields = dict(field.split("=", 1) for field in last.split()[1:])
    return float(fields["tokens_per_second"]), f"TensorFlow {fields['tensorflow']}, Keras {fields['keras']}"


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    args = parse_args()
    python = tensorflow_python(args)
    results = {(side, t): [] for side in ("continuo-train", "keras") for t in args.threads}
    sgemm = {}
    keras_version = ""
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(1, args.rounds + 1):
            for threads in args.threads:
                rate, sgemm[threads] = run_continuo(args, threads, scratch)
                results[("continuo-train", threads)].append(rate)
                print(f"round {round_}  {threads} thread(s)  continuo-train {rate:9.0f} tok/s", flush=True)
                rate, keras_version = run_keras(args, python, threads)
                results[("keras", threads)].append(rate)
                print(f"round {round_}  {threads} thread(s)  keras          {rate:9.0f} tok/s", flush=True)

    flops_per_token = 6 * network_weights(args)
    print(f"\n{cpu_name()}, {os.cpu_count()} cores; {args.layers} x {args.hidden} LSTM, embedding "
          f"{args.embed}, dense {args.dense}; batch {args.batch} x {args.seq}; {args.rounds} alternating "
          f"rounds of {args.steps} timed steps after {args.warmup}; {keras_version}\n")
    print(f"| trainer | threads | tokens/s, median (range) | against Keras | share of measured sgemm |")
    print(f"|---|---|---|---|---|")
    for threads in args.threads:
        keras = statistics.median(results[("keras", threads)])
        for side in ("continuo-train", "keras"):
            rates = results[(side, threads)]
            median = statistics.median(rates)
            share = 100 * flops_per_token * median / sgemm[threads]
            print(f"| {side} | {threads} | {median:,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) | "
                  f"{median / keras:.2f}x | {share:.0f}% of {sgemm[threads] / 1e9:.0f} GFLOP/s |")


def network_weights(args):
    """Multiplied weights of the network (the embedding is looked up, not multiplied)."""
    weights = 0
    for layer in range(args.layers):
        fan_in = args.embed if layer == 0 else args.hidden
        weights += 4 * args.hidden * (fan_in + args.hidden + 2)
    return weights + args.hidden * args.dense + args.dense + args.dense * 384 + 384


if __name__ == "__main__":
    main()
