#!/usr/bin/env python3
"""Keras reference for the training-speed benchmark of `continuo-train`.

This is the other side of a side-by-side benchmark: the same network and the same training
recipe as the Rust trainer (trainer/src/net.rs, optim.rs, train.rs), written the ordinary way in
Keras 3 on TensorFlow, so that the Rust trainer's tokens per second can be compared with what a
mainstream framework does on the same machine, the same data and the same number of threads.
It only measures speed. It is not used to train, and never trains, any model the project ships:
it saves nothing.

    scripts/keras-reference.py DATASET [--threads 1] [--steps 100] [--warmup 20] ...

DATASET is a folder written by `continuo-train prepare` (index.json and shards of 16-bit
little-endian token ids); only its training split is read, memory-mapped.

What is the same as the Rust trainer:
  - the network: Embedding(384, E) -> L x LSTM(H) -> Dense(D, relu) -> Dense(384) logits, float32;
  - the loss: mean next-token cross-entropy over batch x seq positions of random windows of
    seq + 1 tokens drawn anywhere in the concatenated training tokens (a window may cross from
    one song into the next, as in Rust), each transposed by a random shift of up to --transpose
    semitones either way, as far as every pitch of the window stays in 0..127 (the Rust rule);
  - the optimizer: AdamW (beta 0.9/0.99, eps 1e-8, decoupled weight decay 0.01 on matrices only,
    not biases) after clipping the global gradient norm to 1.0;
  - the count: tokens per second = batch x seq x timed steps / their wall time.
What differs, on purpose or by the framework, none of which changes the work per step much:
  - the learning rate is the constant peak, 3e-3 (the Rust trainer warms up, then decays);
  - Keras's LSTM has one bias vector per layer where the Rust net, laid out like PyTorch's, has
    two (b_ih + b_hh), so the Rust net has 4H more parameters per layer; Keras's initialisers
    (Glorot, orthogonal, forget bias 1) differ from PyTorch's uniform ones;
  - windows are drawn with numpy's generator, not the project's Rng: other windows, same kind.

Device: the CPU only (CUDA_VISIBLE_DEVICES is emptied), as the Rust trainer.

Timing: --warmup steps run first untimed (graph tracing, allocation), then --steps timed steps.
Batches come from a Python generator through tf.data with prefetch, so drawing them (under half
a millisecond per batch, against some 150 ms for a step) is not what is measured. By default the loop is Keras's own
model.fit over that dataset (--loop fit); --loop function runs a tf.function train step by hand
instead, as a check that fit adds no overhead of its own. XLA is off unless --xla.

Threads: --threads N sets TensorFlow's intra-op pool (the threads inside one op: matmuls, the
elementwise math) to N, and the inter-op pool (how many ops may run at once) to 1 by default, so
that N means N cores of math, as RAYON_NUM_THREADS=N does for the Rust trainer; --inter-op
changes the latter. They are set through the environment (TF_NUM_INTRAOP_THREADS,
TF_NUM_INTEROP_THREADS, OMP_NUM_THREADS) before TensorFlow is imported, and again through
tf.config.threading before any op runs. After the timed steps the script prints how many cores
the process kept busy on average and how many of its threads did real work, so one can see
whether the setting held.

Output: a few lines about the setup, the loss (first step, and the mean of the last timed steps,
so one can see it trains), and last one line of exactly this form:
    keras tokens_per_second=<float> steps=<n> seconds=<float> threads=<n> tensorflow=<version> keras=<version>

Needs tensorflow 2.16 or later (which brings Keras 3) and numpy, e.g. in a virtualenv outside the
repository: python3 -m venv ~/tf-venv && ~/tf-venv/bin/pip install tensorflow, then run this
script with ~/tf-venv/bin/python.
"""
import argparse
import json
import os
import resource
import sys
import time

VOCAB = 384
PITCH_TOKENS = 256  # NOTE_ON 0..127, NOTE_OFF 128..255: pitch = id % 128


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Measures Keras/TensorFlow training throughput "
        "on the network and recipe of the Rust trainer; trains nothing that is kept.",
        epilog="The last line printed is: keras tokens_per_second=<float> steps=<n> "
        "seconds=<float> threads=<n> tensorflow=<version> keras=<version>. "
        "Log noise from TensorFlow can be hidden with TF_CPP_MIN_LOG_LEVEL=2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("dataset", help="dataset folder written by `continuo-train prepare` (its train split is read)")
    p.add_argument("--layers", type=int, default=2, help="LSTM layers")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size")
    p.add_argument("--embed", type=int, default=64, help="token embedding size")
    p.add_argument("--dense", type=int, default=0, help="size of the dense layer before the output (0: the hidden size, as in Rust)")
    p.add_argument("--batch", type=int, default=32, help="windows per step")
    p.add_argument("--seq", type=int, default=128, help="tokens per window (each window reads seq + 1)")
    p.add_argument("--transpose", type=int, default=5, help="transpose each window by up to this many semitones either way (0: off)")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate (constant)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled weight decay, on matrices only")
    p.add_argument("--clip", type=float, default=1.0, help="clip the global gradient norm to this (0: off)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (tracing, allocation)")
    p.add_argument("--steps", type=int, default=100, help="timed steps")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (the math)")
    p.add_argument("--inter-op", type=int, default=1, help="TensorFlow inter-op threads (ops run at once)")
    p.add_argument("--xla", action="store_true", help="compile the train step with XLA (jit_compile=True)")
    p.add_argument("--loop", choices=["fit", "function"], default="fit",
                   help="fit: model.fit over the tf.data pipeline; function: a hand-written tf.function train step")
    p.add_argument("--onednn", choices=["default", "on", "off"], default="default",
                   help="TF_ENABLE_ONEDNN_OPTS: default leaves TensorFlow's choice (on, on x86 Linux) or the environment's")
    p.add_argument("--prefetch", type=int, default=8, help="batches drawn ahead")
    p.add_argument("--seed", type=int, default=1337, help="seed for the weights and the windows")
    args = p.parse_args()
    if args.dense == 0:
        args.dense = args.hidden
    for name in ("layers", "hidden", "embed", "dense", "batch", "seq", "steps", "threads", "inter_op", "prefetch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 1:
        p.error("--warmup must be at least 1 (the first step traces the graph and must not be timed)")
    if args.transpose < 0:
        p.error("--transpose must be at least 0")
    return args


def set_thread_environment(args):
    """Before TensorFlow is imported: its pools read these when they are created."""
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(args.inter_op)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    # The Rust trainer computes on the CPU; so does this, even where a GPU is present.
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if args.onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"


class TrainTokens:
    """The training split's shards, memory-mapped, read as one stream of tokens."""

    def __init__(self, folder):
        import numpy as np

        path = os.path.join(folder, "index.json")
        try:
            with open(path) as f:
                index = json.load(f)
        except OSError as e:
            sys.exit(f"{path}: cannot read the dataset index ({e.strerror}); make one with `continuo-train prepare`")
        if index.get("format") != "continuo-dataset" or index.get("version") != 1:
            sys.exit(f"{path}: not a continuo-dataset version 1 index")
        if index["vocab"]["size"] != VOCAB:
            sys.exit(f"{path}: vocabulary of {index['vocab']['size']} tokens, not {VOCAB}")
        self.shards, self.starts, total = [], [], 0
        for shard in index["shards"]:
            if shard["split"] != "train":
                continue
            file = os.path.join(folder, shard["file"])
            size = os.path.getsize(file)
            if size != 2 * shard["tokens"]:
                sys.exit(f"{file}: {size} bytes, but the index says {shard['tokens']} tokens")
            if shard["tokens"] == 0:
                continue
            tokens = np.memmap(file, dtype="<u2", mode="r")
            if int(tokens.max()) >= VOCAB:
                sys.exit(f"{file}: a token id is outside the vocabulary of {VOCAB}")
            self.shards.append(tokens)
            self.starts.append(total)
            total += len(tokens)
        self.total = total
        self.documents = sum(1 for d in index["documents"] if d["split"] == "train")
        self.np = np

    def window(self, start, span):
        """Tokens start..start+span of the stream, across shards if need be."""
        np = self.np
        i = int(np.searchsorted(self.starts, start, side="right")) - 1
        offset = start - self.starts[i]
        piece = self.shards[i][offset:offset + span]
        if len(piece) == span or i + 1 == len(self.shards):
            return piece
        return np.concatenate([piece, self.window(self.starts[i + 1], span - len(piece))])


def batches(data, args):
    """Endless (inputs, targets) int32 [batch, seq]; windows and shifts as the Rust trainer draws them."""
    np = data.np
    rng = np.random.default_rng(args.seed)
    span = args.seq + 1
    if data.total < span:
        sys.exit(f"{args.dataset}: {data.total} training tokens, fewer than one window of {args.seq} (+1)")
    out = np.empty((args.batch, span), dtype=np.int32)
    while True:
        # As TokenStream::random_window: start uniform in 0..len - span (or 0 if len == span).
        starts = rng.integers(0, max(data.total - span, 1), size=args.batch)
        for row, start in enumerate(starts):
            out[row] = data.window(int(start), span)
        if args.transpose > 0:
            pitched = out < PITCH_TOKENS
            pitch = out & 127
            low = np.where(pitched, pitch, 127).min(axis=1)
            high = np.where(pitched, pitch, 0).max(axis=1)
            down = np.minimum(args.transpose, low)
            up = np.minimum(args.transpose, 127 - high)
            shift = rng.integers(-down, up + 1)  # inclusive of up; 0 when a window has no room
            out += np.where(pitched, shift[:, None], 0).astype(np.int32)
        yield out[:, :-1].copy(), out[:, 1:].copy()


def thread_cpu_seconds():
    """CPU seconds (user + system) of each of this process's threads, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            seconds[tid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return seconds


class Clock:
    """Wall time, process CPU time and per-thread CPU time at one moment."""

    def __init__(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.threads = thread_cpu_seconds()
        self.wall = time.perf_counter()


def report_cpu(start, end):
    wall = end.wall - start.wall
    cores = (end.cpu - start.cpu) / wall
    busy = [t for t, s in end.threads.items() if s - start.threads.get(t, 0.0) > 0.1 * wall]
    print(f"cpu: {cores:.2f} cores busy on average over the timed steps; "
          f"{len(busy)} of {len(end.threads)} threads did more than 10% of a core")


def main():
    args = parse_args()
    set_thread_environment(args)
    data = TrainTokens(args.dataset)

    import numpy as np
    import tensorflow as tf

    # Before any op runs; raises if the runtime was already initialised.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    import keras

    keras.utils.set_random_seed(args.seed)
    print(f"tensorflow {tf.__version__}, keras {keras.__version__} ({keras.backend.backend()} backend), "
          f"numpy {np.__version__}; intra-op threads {tf.config.threading.get_intra_op_parallelism_threads()}, "
          f"inter-op {tf.config.threading.get_inter_op_parallelism_threads()}, "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset: TensorFlow default)')}, "
          f"XLA {'on' if args.xla else 'off'}, loop {args.loop}")

    inputs = keras.Input(shape=(args.seq,), batch_size=args.batch, dtype="int32", name="tokens")
    x = keras.layers.Embedding(VOCAB, args.embed, name="embedding")(inputs)
    for layer in range(args.layers):
        x = keras.layers.LSTM(args.hidden, return_sequences=True, name=f"lstm_{layer}")(x)
    x = keras.layers.Dense(args.dense, activation="relu", name="dense")(x)
    logits = keras.layers.Dense(VOCAB, name="out")(x)
    model = keras.Model(inputs, logits, name="continuo_lstm")

    optimizer = keras.optimizers.AdamW(
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        beta_1=0.9,
        beta_2=0.99,
        epsilon=1e-8,
        global_clipnorm=args.clip if args.clip > 0 else None,
    )
    # As the Rust trainer: decay matrices (embedding, kernels) only, never biases.
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if len(v.shape) < 2])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=args.xla)

    print(f"network: {args.layers} x {args.hidden} LSTM, embed {args.embed}, dense {args.dense}, "
          f"{model.count_params()} parameters; batch {args.batch} x seq {args.seq}; "
          f"training tokens {data.total} ({data.documents} files)")

    spec = tf.TensorSpec((args.batch, args.seq), tf.int32)
    dataset = tf.data.Dataset.from_generator(lambda: batches(data, args), output_signature=(spec, spec))
    dataset = dataset.prefetch(args.prefetch)

    total = args.warmup + args.steps
    running_means = []  # fit's logged loss is the mean since the epoch began
    step_losses = []
    clocks = {}

    if args.loop == "fit":
        class Timer(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                running_means.append(float(logs["loss"]))  # also waits for the step to finish
                if batch + 1 == args.warmup:
                    clocks["start"] = Clock()
                elif batch + 1 == total:
                    clocks["end"] = Clock()

        model.fit(dataset, epochs=1, steps_per_epoch=total, verbose=0, shuffle=False, callbacks=[Timer()])
        previous = 0.0
        for k, mean in enumerate(running_means, start=1):
            step_losses.append(k * mean - (k - 1) * previous)
            previous = mean
    else:
        optimizer.build(model.trainable_variables)

        @tf.function(jit_compile=args.xla)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(gradients, model.trainable_variables)
            return loss

        iterator = iter(dataset)
        for step in range(total):
            x, y = next(iterator)
            step_losses.append(float(train_step(x, y)))  # waits for the step, as Rust's to_scalar
            if step + 1 == args.warmup:
                clocks["start"] = Clock()
        clocks["end"] = Clock()

    start, end = clocks["start"], clocks["end"]
    seconds = end.wall - start.wall
    tokens_per_second = args.batch * args.seq * args.steps / seconds
    tail = step_losses[-min(10, args.steps):]
    report_cpu(start, end)
    print(f"loss: first step {step_losses[0]:.4f}, last {len(tail)} steps {sum(tail) / len(tail):.4f} "
          f"(ln {VOCAB} = {np.log(VOCAB):.4f})")
    print(f"keras tokens_per_second={tokens_per_second:.1f} steps={args.steps} seconds={seconds:.3f} "
          f"threads={args.threads} tensorflow={tf.__version__} keras={keras.__version__}")


if __name__ == "__main__":
    main()
