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

LiteRT files against what they were converted from (experiments/litert_export.py):
the same figures (`binary_agreement`, `token_agreement`), their size and
operators (`file_facts`), and their latency on LiteRT's interpreter
(`serve_runner`, `median_call_seconds`, `timed_map`, `unrolling_latency`):

    path = rnn_keras.export.to_litert(model, "model.tflite")
    runner, name = benchmarking.serve_runner(path)
    seconds = benchmarking.median_call_seconds(lambda: runner(**{name: x}), repeats=30)
"""

import collections
import os
import statistics
import time

import numpy as np

from rnn_keras.utils.optional import import_module
from rnn_keras.utils.timing import median_seconds

__all__ = [
    "TRAIN_FLOPS_PER_UNIT",
    "Implementation",
    "batches",
    "benchmark_model",
    "binary_agreement",
    "file_facts",
    "implementations",
    "in_batches",
    "matmul_flops",
    "measure_throughput",
    "median_call_seconds",
    "median_seconds",
    "random_batch",
    "recurrent_flops_per_token",
    "serve_runner",
    "time_keras",
    "time_torch",
    "timed_map",
    "token_agreement",
    "torch_version",
    "unrolling_latency",
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


# --- LiteRT files: the same figures as their source, size, operators, latency ---------


def median_call_seconds(call, repeats):
    """Median seconds of one `call()` over `repeats` calls, after one untimed call."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(
            f"median_call_seconds: `repeats` must be a positive integer. Received: {repeats!r}"
        )

    def run_calls(calls):
        for _ in range(calls):
            call()

    return median_seconds(run_calls, steps=1, repeats=repeats, warmup_steps=1)


def timed_map(function, rows):
    """(`function` of each of `rows`, one call at a time, stacked; the seconds they took):
    what an interpreter that serves one input at a time does with a test set."""
    start = time.perf_counter()
    outputs = [function(row) for row in rows]
    seconds = time.perf_counter() - start
    if not outputs:
        raise ValueError("timed_map: expected at least one row. Received: none")
    return np.stack(outputs), seconds


def file_facts(path):
    """`{"kb": its size in KiB, "ops": its distinct operators, sorted}` of a `.tflite` file."""
    from rnn_keras.export.on_device import op_names

    return {"kb": os.path.getsize(path) / 1024, "ops": sorted(set(op_names(path)))}


def serve_runner(path, num_threads=None):
    """(runner, input name): the `serve` signature of a `.tflite` file with one input, on
    LiteRT's interpreter with `num_threads` threads (default: one per CPU core, as
    TensorFlow runs a SavedModel)."""
    litert = import_module("ai_edge_litert.interpreter", feature="serve_runner")

    interpreter = litert.Interpreter(str(path), num_threads=num_threads or os.cpu_count())
    runner = interpreter.get_signature_runner("serve")
    names = list(runner.get_input_details())
    if len(names) != 1:
        raise ValueError(
            f"serve_runner: expected a `serve` signature with one input. Received: inputs "
            f"{names} in {path}"
        )
    return runner, names[0]


def binary_agreement(probabilities, reference, labels):
    """How a converted binary classifier agrees with the model it came from, both giving the
    probability of class 1: `{"accuracy"` (against the 0/1 `labels`),
    `"same_label_as_savedmodel"` (the fraction of inputs both put on the same side of 0.5),
    `"max_abs_difference"}` (between the probabilities)."""
    probabilities, reference, labels = (
        np.asarray(x).reshape(-1) for x in (probabilities, reference, labels)
    )
    if not len(probabilities) == len(reference) == len(labels) > 0:
        raise ValueError(
            "binary_agreement: expected one probability, reference and label per input. "
            f"Received: {len(probabilities)}, {len(reference)} and {len(labels)}"
        )
    predicted, expected = probabilities >= 0.5, reference >= 0.5
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "same_label_as_savedmodel": float(np.mean(predicted == expected)),
        "max_abs_difference": float(np.max(np.abs(probabilities - reference))),
    }


def token_agreement(tokenize, texts, expected_ids):
    """The fraction of `texts` that `tokenize(text)` turns into exactly their `expected_ids`
    (e.g. an on-device tokenizer against the SavedModel's ids, padding removed)."""
    if len(texts) != len(expected_ids) or not len(texts):
        raise ValueError(
            "token_agreement: expected one id sequence per text, and some texts. "
            f"Received: {len(texts)} texts, {len(expected_ids)} id sequences"
        )
    same = [
        np.array_equal(tokenize(text), ids) for text, ids in zip(texts, expected_ids, strict=True)
    ]
    return float(np.mean(same))


def batches(inputs, batch_size=256):
    """`inputs` (an array or list, or a dict of them sliced alike) in consecutive slices of at
    most `batch_size` rows."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"batches: `batch_size` must be a positive integer. Received: {batch_size!r}"
        )
    if isinstance(inputs, dict):
        sizes = {len(value) for value in inputs.values()}
        if len(sizes) != 1:
            raise ValueError(
                "batches: every input of a dict needs the same number of rows. Received: "
                f"{ {name: len(value) for name, value in inputs.items()} }"
            )
        (size,) = sizes
        for start in range(0, size, batch_size):
            yield {name: value[start : start + batch_size] for name, value in inputs.items()}
        return
    for start in range(0, len(inputs), batch_size):
        yield inputs[start : start + batch_size]


def in_batches(function, inputs, batch_size=256):
    """`function` applied to `batches(inputs, batch_size)`, its outputs (arrays or tensors)
    concatenated along the first axis as NumPy: a large set of inputs through a model, memory
    bounded."""
    return np.concatenate([np.asarray(function(batch)) for batch in batches(inputs, batch_size)])


def unrolling_latency(cell, steps, repeats, path, units=64, features=8, num_threads=None):
    """Interpreter latency of one rnn_keras layer `cell` ("GRU", "SimpleRNN", "LSTM") of
    `units` units over `steps` steps of `features` features, batch 1, converted as LiteRT's
    loop and unrolled (`to_litert(unroll=...)`, each file written to `path` in turn):
    `{"cell", "steps", "loop_us", "loop_kb", "unrolled_us", "unrolled_kb"}`, the median
    microseconds per call over `repeats` calls on zeros and the file's size in KiB."""
    import keras

    from rnn_keras import layers
    from rnn_keras.export.litert import to_litert

    if cell not in ("GRU", "SimpleRNN", "LSTM"):
        raise ValueError(
            "unrolling_latency: `cell` must be 'GRU', 'SimpleRNN' or 'LSTM'. "
            f"Received: cell={cell!r}"
        )
    model = keras.Sequential([keras.Input((steps, features)), getattr(layers, cell)(units)])
    zeros = np.zeros([1, steps, features], np.float32)
    row = {"cell": cell, "steps": steps}
    for unroll in (False, True):
        converted = to_litert(model, path, unroll=unroll)
        runner, name = serve_runner(converted, num_threads)
        key = "unrolled" if unroll else "loop"
        seconds = median_call_seconds(lambda r=runner, n=name: r(**{n: zeros}), repeats)
        row[f"{key}_us"] = 1e6 * seconds
        row[f"{key}_kb"] = os.path.getsize(converted) / 1024
    return row
