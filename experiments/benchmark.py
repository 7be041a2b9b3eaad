"""Throughput of rnn_keras layers against Keras's built-in layers and PyTorch, on this machine.

    python experiments/benchmark.py                 # the full run (about 15 minutes on 2 cores)
    python experiments/benchmark.py --tiny          # seconds: keeps the script working (tests)

In one process, for each shape and implementation: build the model, warm up
(excluded), then time `--repeats` repetitions of `--steps` training steps
(forward + backward + Adam step) and of `--steps` inference batches, and report
the median tokens per second. Keras models are timed with `jit_compile` off
and on, and the faster of the two is reported (the column `xla` says which),
so every Keras implementation is compared at its best. Achieved FLOP/s of the
recurrent layers (LSTM 24*H*(I+H) training FLOPs per token per layer and
direction, GRU 18*H*(I+H), simple RNN 6*H*(I+H); inference a third of that)
is reported as a fraction of this machine's float32 matmul throughput.

Writes a JSON file (`--out`) and prints a Markdown table.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.quiet_tensorflow()

SHAPES = {
    # name: batch, steps, embedding, units, layers, bidirectional, vocabulary, sequence output
    "imdb": dict(
        batch=64,
        time=200,
        embedding=128,
        units=128,
        layers=1,
        bidirectional=False,
        vocabulary=20000,
        per_step_output=False,
    ),
    "imdb-bi": dict(
        batch=64,
        time=200,
        embedding=128,
        units=128,
        layers=1,
        bidirectional=True,
        vocabulary=20000,
        per_step_output=False,
    ),
    "char": dict(
        batch=64,
        time=100,
        embedding=64,
        units=512,
        layers=2,
        bidirectional=False,
        vocabulary=65,
        per_step_output=True,
    ),
}
TINY = dict(batch=4, time=6, embedding=8, units=8, layers=1, vocabulary=50)
TRAIN_FLOPS_PER_UNIT = {"simple": 6, "lstm": 24, "gru": 18}


def implementations(torch_available):
    """(name, family, cell kind, factory) for every implementation to time."""
    import keras

    import rnn_keras

    impls = [
        (
            "rnn_keras.SimpleRNN",
            "rnn_keras",
            "simple",
            lambda units, **kw: rnn_keras.SimpleRNN(units, **kw),
        ),
        ("rnn_keras.LSTM", "rnn_keras", "lstm", lambda units, **kw: rnn_keras.LSTM(units, **kw)),
        ("rnn_keras.GRU", "rnn_keras", "gru", lambda units, **kw: rnn_keras.GRU(units, **kw)),
        (
            "keras.layers.SimpleRNN",
            "keras",
            "simple",
            lambda units, **kw: keras.layers.SimpleRNN(units, **kw),
        ),
        ("keras.layers.LSTM", "keras", "lstm", lambda units, **kw: keras.layers.LSTM(units, **kw)),
        (
            "keras.layers.GRU(reset_after=False)",
            "keras",
            "gru",
            lambda units, **kw: keras.layers.GRU(units, reset_after=False, **kw),
        ),
        ("keras.layers.GRU", "keras", "gru", lambda units, **kw: keras.layers.GRU(units, **kw)),
    ]
    if torch_available:
        impls += [
            ("torch.nn.RNN", "torch", "simple", None),
            ("torch.nn.LSTM", "torch", "lstm", None),
            ("torch.nn.GRU", "torch", "gru", None),
        ]
    return impls


def recurrent_flops_per_token(kind, shape, training=True):
    total, input_dim = 0, shape["embedding"]
    directions = 2 if shape["bidirectional"] else 1
    for _ in range(shape["layers"]):
        per_direction = TRAIN_FLOPS_PER_UNIT[kind] * shape["units"] * (input_dim + shape["units"])
        total += directions * per_direction
        input_dim = directions * shape["units"]
    return total if training else total / 3


def keras_model(factory, shape):
    import keras

    inputs = keras.Input((shape["time"],), batch_size=shape["batch"], dtype="int32")
    x = keras.layers.Embedding(shape["vocabulary"], shape["embedding"])(inputs)
    for index in range(shape["layers"]):
        last = index == shape["layers"] - 1
        layer = factory(shape["units"], return_sequences=shape["per_step_output"] or not last)
        if shape["bidirectional"]:
            layer = keras.layers.Bidirectional(layer)
        x = layer(x)
    if shape["per_step_output"]:
        outputs = keras.layers.Dense(shape["vocabulary"])(x)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        outputs = keras.layers.Dense(1)(x)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.Model(inputs, outputs), loss


def batch_data(shape, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(0, shape["vocabulary"], (shape["batch"], shape["time"])).astype("int32")
    if shape["per_step_output"]:
        y = rng.integers(0, shape["vocabulary"], (shape["batch"], shape["time"])).astype("int32")
    else:
        y = rng.integers(0, 2, (shape["batch"], 1)).astype("float32")
    return x, y


def median_seconds(run_steps, steps, repeats):
    run_steps(2)  # warm-up: tracing, compilation, first allocations
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        timings.append((time.perf_counter() - start) / steps)
    return statistics.median(timings)


def time_keras(factory, shape, steps, repeats, jit_compile):
    import keras

    keras.utils.clear_session()
    model, loss = keras_model(factory, shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit_compile)
    x, y = batch_data(shape)

    def train(n):
        for _ in range(n):
            model.train_on_batch(x, y)

    def infer(n):
        for _ in range(n):
            model.predict_on_batch(x)

    return median_seconds(train, steps, repeats), median_seconds(infer, steps, repeats)


def time_torch(kind, shape, steps, repeats):
    import torch

    # TensorFlow flushes denormal floats to zero on CPU; PyTorch does not by default,
    # and an LSTM's backward pass over 200 steps then spends most of its time on
    # denormal arithmetic (measured: 12.7k instead of 185k tokens/s at the IMDB
    # shape). Compare both with the same floating-point mode.
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    torch_class = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            directions = 2 if shape["bidirectional"] else 1
            self.embedding = torch.nn.Embedding(shape["vocabulary"], shape["embedding"])
            self.rnn = torch_class(
                shape["embedding"],
                shape["units"],
                num_layers=shape["layers"],
                batch_first=True,
                bidirectional=shape["bidirectional"],
            )
            width = shape["vocabulary"] if shape["per_step_output"] else 1
            self.head = torch.nn.Linear(directions * shape["units"], width)

        def forward(self, ids):
            hidden, _ = self.rnn(self.embedding(ids))
            return self.head(hidden if shape["per_step_output"] else hidden[:, -1])

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = batch_data(shape)
    x = torch.from_numpy(x_np).long()
    if shape["per_step_output"]:
        y = torch.from_numpy(y_np).long()
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        y = torch.from_numpy(y_np)
        loss_fn = torch.nn.BCEWithLogitsLoss()

    def train(n):
        model.train()
        for _ in range(n):
            optimizer.zero_grad()
            logits = model(x)
            if shape["per_step_output"]:
                loss = loss_fn(logits.reshape(-1, shape["vocabulary"]), y.reshape(-1))
            else:
                loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()

    def infer(n):
        model.eval()
        with torch.no_grad():
            for _ in range(n):
                model(x)

    return median_seconds(train, steps, repeats), median_seconds(infer, steps, repeats)


def matmul_flops(size=4096, repeats=5):
    """This machine's float32 matmul throughput (FLOP/s) through TensorFlow."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.matmul(a, b).numpy()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(timings)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--steps", type=int, default=5, help="steps per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (median)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated substrings: time only implementations matching",
    )
    parser.add_argument("--no-xla", action="store_true", help="time Keras without jit_compile")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, 1 step, 1 repeat")
    parser.add_argument(
        "--out", default=str(common.REPO_ROOT / "experiments" / "results" / "benchmark.json")
    )
    args = parser.parse_args(argv)
    try:
        import torch

        torch_version = torch.__version__
        torch.set_num_threads(os.cpu_count() or 1)
        torch_available = True
    except ImportError:
        torch_available, torch_version = False, None

    shapes = {name: dict(SHAPES[name]) for name in args.shapes.split(",")}
    if args.tiny:
        for shape in shapes.values():
            shape.update(TINY)
        args.steps, args.repeats = 1, 1
    peak = matmul_flops(512 if args.tiny else 4096)
    print(f"float32 matmul: {peak / 1e9:.1f} GFLOP/s")

    results = []
    for shape_name, shape in shapes.items():
        tokens = shape["batch"] * shape["time"]
        for name, family, kind, factory in implementations(torch_available):
            if args.only and not any(s in name for s in args.only.split(",")):
                continue
            if family == "torch":
                train_s, infer_s = time_torch(kind, shape, args.steps, args.repeats)
                xla = None
            else:
                options = [False] if args.no_xla else [False, True]
                timed = {
                    jit: time_keras(factory, shape, args.steps, args.repeats, jit)
                    for jit in options
                }
                xla = min(timed, key=lambda jit: timed[jit][0])
                train_s, infer_s = timed[xla]
                infer_s = min(t[1] for t in timed.values())
            row = {
                "shape": shape_name,
                "implementation": name,
                "family": family,
                "cell": kind,
                "xla": xla,
                "train_tokens_per_s": tokens / train_s,
                "infer_tokens_per_s": tokens / infer_s,
                "train_flops_fraction": tokens
                / train_s
                * recurrent_flops_per_token(kind, shape)
                / peak,
                "infer_flops_fraction": tokens
                / infer_s
                * recurrent_flops_per_token(kind, shape, training=False)
                / peak,
            }
            results.append(row)
            print(
                f"{shape_name:8s} {name:38s} train {row['train_tokens_per_s']:9.0f} tok/s"
                f"  infer {row['infer_tokens_per_s']:9.0f} tok/s  (xla={xla})",
                flush=True,
            )

    report = {
        "machine": common.machine_info(),
        "matmul_flops": peak,
        "shapes": shapes,
        "steps": args.steps,
        "repeats": args.repeats,
        "torch": torch_version,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    common.write_json(out, report)
    print(markdown_table(report))
    return report


def markdown_table(report):
    """Tokens/s and the ratio of each rnn_keras layer to the built-in and torch of its cell."""
    lines = [
        "| shape | implementation | train tok/s | infer tok/s | train FLOP/s of peak |"
        " rnn_keras train / this | rnn_keras infer / this |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ours = {(r["shape"], r["cell"]): r for r in report["results"] if r["family"] == "rnn_keras"}
    for row in report["results"]:
        mine = ours.get((row["shape"], row["cell"]))
        ratios = ("", "")
        if mine and row["family"] != "rnn_keras":
            ratios = (
                f"{mine['train_tokens_per_s'] / row['train_tokens_per_s']:.2f}x",
                f"{mine['infer_tokens_per_s'] / row['infer_tokens_per_s']:.2f}x",
            )
        lines.append(
            f"| {row['shape']} | {row['implementation']} | {row['train_tokens_per_s']:,.0f} | "
            f"{row['infer_tokens_per_s']:,.0f} | {row['train_flops_fraction']:.0%} | "
            f"{ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
