"""Throughput of recurrent layers: rnn_keras's, Keras's built-in ones and (optionally) PyTorch's.

    from rnn_keras import benchmarking

    shape = dict(batch=64, time=200, embedding=128, units=128, layers=1,
                 bidirectional=False, vocabulary=20000, per_step_output=False)
    peak = benchmarking.matmul_flops()
    for implementation in benchmarking.implementations(include_torch=True):
        row = benchmarking.measure_throughput(
            implementation, **shape, steps=5, repeats=5, peak_flops=peak
        )

A benchmark model is Embedding -> `layers` recurrent layers (each optionally
`Bidirectional`) -> Dense: one logit per sequence (binary cross-entropy) or,
with `per_step_output`, logits over the vocabulary at every step (sparse
categorical cross-entropy). A timing warms up first (tracing, compilation,
first allocations: excluded), then takes the median over `repeats` runs of
`steps` steps of the time per step. A training step is forward + backward +
Adam step; an inference step a forward pass. Throughput is in tokens per
second, tokens = batch * time.

FLOPs of the recurrent layers, per token, layer and direction, with input width
I and H units: the forward pass does G gate matmuls of (I + H) x H at 2 FLOPs per
multiply-add, 2 G H (I + H), and the backward pass twice that, so training
takes 6 G H (I + H): G = 1 (simple RNN), 3 (GRU), 4 (LSTM) gives 6, 18 and 24
H (I + H); inference a third of that. Measured against this machine's float32
matmul throughput (`matmul_flops`), they say how near the layer runs to the
hardware's peak.
"""

import collections
import os
import statistics
import time

from rnn_keras.utils.timing import median_seconds

__all__ = [
    "TRAIN_FLOPS_PER_UNIT",
    "Implementation",
    "benchmark_model",
    "implementations",
    "matmul_flops",
    "measure_throughput",
    "median_seconds",
    "random_batch",
    "recurrent_flops_per_token",
    "time_keras",
    "time_torch",
    "torch_version",
]

# 6 G: training FLOPs per token, unit and (input + state) width, G gate matmuls (module docstring).
TRAIN_FLOPS_PER_UNIT = {"simple": 6, "lstm": 24, "gru": 18}

Implementation = collections.namedtuple("Implementation", ["name", "family", "cell", "layer"])
Implementation.__doc__ = """One timed implementation.

name: how reports call it. family: "rnn_keras", "keras" or "torch". cell: "simple",
"lstm" or "gru". layer: `layer(units, return_sequences=...)` builds its Keras layer
(None for torch, whose model `time_torch` builds)."""


def implementations(include_torch=False):
    """Every implementation to time: rnn_keras's layers, Keras's and, optionally, torch's.

    This is the one place where the timed Keras layers are built; rnn_keras's run
    their default loop choice (the fused kernel where it applies).
    """
    import keras

    from rnn_keras.layers import recurrent

    def built_in_gru_v1(units, **kwargs):
        return keras.layers.GRU(units, reset_after=False, **kwargs)

    timed = [
        Implementation("rnn_keras.SimpleRNN", "rnn_keras", "simple", recurrent.SimpleRNN),
        Implementation("rnn_keras.LSTM", "rnn_keras", "lstm", recurrent.LSTM),
        Implementation("rnn_keras.GRU", "rnn_keras", "gru", recurrent.GRU),
        Implementation("keras.layers.SimpleRNN", "keras", "simple", keras.layers.SimpleRNN),
        Implementation("keras.layers.LSTM", "keras", "lstm", keras.layers.LSTM),
        Implementation("keras.layers.GRU(reset_after=False)", "keras", "gru", built_in_gru_v1),
        Implementation("keras.layers.GRU", "keras", "gru", keras.layers.GRU),
    ]
    if include_torch:
        timed += [
            Implementation("torch.nn.RNN", "torch", "simple", None),
            Implementation("torch.nn.LSTM", "torch", "lstm", None),
            Implementation("torch.nn.GRU", "torch", "gru", None),
        ]
    return timed


def torch_version():
    """PyTorch's version, with its threads set to every CPU core; None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    return torch.__version__


def recurrent_flops_per_token(
    cell, *, embedding, units, layers=1, bidirectional=False, training=True
):
    """FLOPs per token of a stack of recurrent layers: sum over layers and directions of
    `TRAIN_FLOPS_PER_UNIT[cell] * H * (I + H)`, a third of it for inference.

    Args:
        cell: "simple", "lstm" or "gru".
        embedding: the first layer's input width I.
        units: H; each later layer reads (1 or 2 directions) * H.
        layers, bidirectional: the stack.
        training: forward + backward (else the forward pass only).
    """
    if cell not in TRAIN_FLOPS_PER_UNIT:
        raise ValueError(
            f"recurrent_flops_per_token: `cell` must be one of {sorted(TRAIN_FLOPS_PER_UNIT)}. "
            f"Received: cell={cell!r}"
        )
    total, input_dim = 0, embedding
    directions = 2 if bidirectional else 1
    for _ in range(layers):
        total += directions * TRAIN_FLOPS_PER_UNIT[cell] * units * (input_dim + units)
        input_dim = directions * units
    return total if training else total / 3


def benchmark_model(
    layer, *, batch, time, embedding, units, layers, bidirectional, vocabulary, per_step_output
):
    """(model, loss): the benchmark model (module docstring) on `layer(units, return_sequences=)`.

    The input is (batch, time) int32 token ids, with the batch size fixed.
    """
    import keras

    inputs = keras.Input((time,), batch_size=batch, dtype="int32")
    x = keras.layers.Embedding(vocabulary, embedding)(inputs)
    for index in range(layers):
        last = index == layers - 1
        recurrent = layer(units, return_sequences=per_step_output or not last)
        if bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent)
        x = recurrent(x)
    if per_step_output:
        outputs = keras.layers.Dense(vocabulary)(x)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        outputs = keras.layers.Dense(1)(x)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.Model(inputs, outputs), loss


def random_batch(*, batch, time, vocabulary, per_step_output, seed=0):
    """(token ids (batch, time) int32, targets): token ids per step, or one 0/1 per sequence."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocabulary, (batch, time)).astype("int32")
    if per_step_output:
        y = rng.integers(0, vocabulary, (batch, time)).astype("int32")
    else:
        y = rng.integers(0, 2, (batch, 1)).astype("float32")
    return x, y


def time_keras(layer, *, steps, repeats, jit_compile, **shape):
    """(seconds per training step, per inference step) of the Keras benchmark model on `layer`.

    `shape`: the keyword arguments of `benchmark_model`. Adam at 1e-3; `train_on_batch`
    and `predict_on_batch` on one fixed random batch, in a fresh Keras session.
    """
    import keras

    keras.utils.clear_session()
    model, loss = benchmark_model(layer, **shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit_compile)
    x, y = random_batch(**_batch_arguments(shape))

    def train(n):
        for _ in range(n):
            model.train_on_batch(x, y)

    def infer(n):
        for _ in range(n):
            model.predict_on_batch(x)

    timing = {"steps": steps, "repeats": repeats}
    return median_seconds(train, **timing), median_seconds(infer, **timing)


def time_torch(cell, *, steps, repeats, **shape):
    """(seconds per training step, per inference step) of the same model in PyTorch.

    `torch.nn.RNN`, `LSTM` or `GRU` (`cell`) with `num_layers` and `bidirectional`
    (its own stacking), batch first; Adam at 1e-3. `shape`: as for `time_keras`.
    """
    import torch

    # TensorFlow flushes denormal floats to zero on CPU; PyTorch does not by default,
    # and an LSTM's backward pass over 200 steps then spends most of its time on
    # denormal arithmetic (measured: 12.7k instead of 185k tokens/s at the IMDB
    # shape). Compare both with the same floating-point mode.
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    torch_class = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    per_step_output, vocabulary = shape["per_step_output"], shape["vocabulary"]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            directions = 2 if shape["bidirectional"] else 1
            self.embedding = torch.nn.Embedding(vocabulary, shape["embedding"])
            self.rnn = torch_class(
                shape["embedding"],
                shape["units"],
                num_layers=shape["layers"],
                batch_first=True,
                bidirectional=shape["bidirectional"],
            )
            width = vocabulary if per_step_output else 1
            self.head = torch.nn.Linear(directions * shape["units"], width)

        def forward(self, ids):
            hidden, _ = self.rnn(self.embedding(ids))
            return self.head(hidden if per_step_output else hidden[:, -1])

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_np, y_np = random_batch(**_batch_arguments(shape))
    x = torch.from_numpy(x_np).long()
    if per_step_output:
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
            if per_step_output:
                loss = loss_fn(logits.reshape(-1, vocabulary), y.reshape(-1))
            else:
                loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()

    def infer(n):
        model.eval()
        with torch.no_grad():
            for _ in range(n):
                model(x)

    timing = {"steps": steps, "repeats": repeats}
    return median_seconds(train, **timing), median_seconds(infer, **timing)


def matmul_flops(size=4096, repeats=5):
    """This machine's float32 matmul throughput (FLOP/s): 2 size^3 over the median time of a
    (size x size) @ (size x size) product, through TensorFlow, after one untimed product."""
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


def measure_throughput(
    implementation, *, steps, repeats, peak_flops, jit_compile=(False, True), **shape
):
    """One result row: the tokens/s of `implementation` at `shape`, training and inference.

    A Keras implementation is timed with each `jit_compile` option; the row keeps the
    option with the faster training step (`xla`) and the fastest inference of all, so
    each is compared at its best. A torch one is timed once (`xla` None).

    Args:
        implementation: an `Implementation` from `implementations()`.
        steps, repeats: steps per timing, timings per median (`median_seconds`).
        peak_flops: the FLOP/s the fractions are taken of (`matmul_flops()`).
        jit_compile: the Keras options to try.
        **shape: `batch`, `time`, `embedding`, `units`, `layers`, `bidirectional`,
            `vocabulary`, `per_step_output` (`benchmark_model`).

    Returns:
        {"implementation", "family", "cell", "xla", "train_tokens_per_s",
        "infer_tokens_per_s", "train_flops_fraction", "infer_flops_fraction"}: tokens/s
        times `recurrent_flops_per_token`, over `peak_flops`.
    """
    timing = {"steps": steps, "repeats": repeats}
    if implementation.family == "torch":
        train_s, infer_s = time_torch(implementation.cell, **timing, **shape)
        xla = None
    else:
        timed = {
            jit: time_keras(implementation.layer, jit_compile=jit, **timing, **shape)
            for jit in jit_compile
        }
        xla = min(timed, key=lambda jit: timed[jit][0])
        train_s = timed[xla][0]
        infer_s = min(seconds[1] for seconds in timed.values())
    tokens = shape["batch"] * shape["time"]
    stack = {key: shape[key] for key in ("embedding", "units", "layers", "bidirectional")}
    flops = {
        phase: recurrent_flops_per_token(implementation.cell, training=phase == "train", **stack)
        for phase in ("train", "infer")
    }
    return {
        "implementation": implementation.name,
        "family": implementation.family,
        "cell": implementation.cell,
        "xla": xla,
        "train_tokens_per_s": tokens / train_s,
        "infer_tokens_per_s": tokens / infer_s,
        "train_flops_fraction": tokens / train_s * flops["train"] / peak_flops,
        "infer_flops_fraction": tokens / infer_s * flops["infer"] / peak_flops,
    }


def _batch_arguments(shape):
    return {key: shape[key] for key in ("batch", "time", "vocabulary", "per_step_output")}
