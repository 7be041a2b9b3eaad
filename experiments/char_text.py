"""Char-level language model on tiny-shakespeare with truncated BPTT, exported as a generator.

    python experiments/char_text.py                      # train the default model
    python experiments/char_text.py --quick --out /tmp/run    # a minutes-long smoke run
    python experiments/char_text.py generate --model saved_models/char_rnn \\
        --prompt "ROMEO:" --chars 500 --temperature 0.8

Truncated BPTT as the guide describes it: the training text is cut into
`--batch-size` contiguous streams, and batch k holds window k of every stream,
so row j of a batch continues row j of the previous one. A stateful recurrent
stack carries its state from window to window (gradients stop at the window
border); the state is reset at the start of every epoch and before evaluation.

A run folder (`--out`, default `runs/char_text-<time>`) gets `config.json`,
`metrics.json` (validation and test loss in nats/char and bits/char, per-epoch
history, the global gradient norm of every step, wall time, machine),
`learning_curve.png`, `samples.txt` (temperatures 0.5, 0.8 and 1.0), TensorBoard
logs and the `BackupAndRestore` checkpoint. Exports go to `--export-dir`
(default `saved_models/`; the run folder with `--quick`):

* `char_rnn/`: a SavedModel with the endpoints `generate`, `score`,
  `initial_state`, `step` and `vocabulary` (see `CharExport`), served by
  `tf.saved_model.load` with no code of ours;
* `char_rnn.keras`: the trained model for further training.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.quiet_tensorflow()

DEFAULTS = {
    "cell": "lstm",
    "layers": 2,
    "units": 512,
    "embedding_dim": 64,
    "seq_len": 100,
    "batch_size": 64,
    "dropout": 0.25,
    "epochs": 20,
    "lr": 2e-3,
    "clipnorm": 5.0,
    "patience": 3,
    "seed": 1337,
}
QUICK = {
    "max_chars": 6000,
    "layers": 1,
    "units": 32,
    "embedding_dim": 8,
    "seq_len": 20,
    "batch_size": 8,
    "epochs": 1,
}
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_PROMPT = "ROMEO:"
SAMPLE_CHARS = 600
SCORE_CHUNK = 256  # steps read at a time by score/generate: bounds memory for long texts


# --- data -------------------------------------------------------------------------------------


def load_splits(data_dir, manual_dir=None, max_chars=None):
    """{"train", "validation", "test"}: the text of each tiny_shakespeare split."""
    import tensorflow_datasets as tfds

    kwargs = {}
    if manual_dir:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        kwargs["download_and_prepare_kwargs"] = {"download_config": config}
    texts = {}
    for split in ("train", "validation", "test"):
        dataset = tfds.load("tiny_shakespeare", split=split, data_dir=data_dir, **kwargs)
        (example,) = list(tfds.as_numpy(dataset))
        texts[split] = example["text"].decode("utf-8")[:max_chars]
    return texts


def make_lookup(train_text):
    """StringLookup over the training text's characters; id 0 is out-of-vocabulary."""
    import keras

    return keras.layers.StringLookup(
        vocabulary=sorted(set(train_text)),
        num_oov_indices=1,
        mask_token=None,
        name="char_lookup",
    )


def encode(lookup, text):
    import tensorflow as tf

    chars = tf.strings.unicode_split(text, "UTF-8")
    return lookup(chars).numpy().astype("int32")


def stream_windows(ids, batch_size, seq_len):
    """(inputs, targets), each (windows, batch, seq_len): batch k is window k of every stream.

    The text is cut into `batch_size` contiguous streams; row j of window k+1
    starts where row j of window k ended, and targets are inputs shifted by one.
    """
    stream_len = len(ids) // batch_size
    if stream_len < seq_len + 1:
        raise ValueError(
            f"stream_windows: {len(ids)} characters make {batch_size} streams of {stream_len}, "
            f"too short for one window of {seq_len} (+1 target). Received: len(ids)={len(ids)}, "
            f"batch_size={batch_size}, seq_len={seq_len}"
        )
    streams = ids[: batch_size * stream_len].reshape(batch_size, stream_len)
    windows = (stream_len - 1) // seq_len
    inputs = streams[:, : windows * seq_len].reshape(batch_size, windows, seq_len)
    targets = streams[:, 1 : windows * seq_len + 1].reshape(batch_size, windows, seq_len)
    return inputs.transpose(1, 0, 2), targets.transpose(1, 0, 2)


def window_dataset(ids, batch_size, seq_len):
    import tensorflow as tf

    inputs, targets = stream_windows(ids, batch_size, seq_len)
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).prefetch(tf.data.AUTOTUNE)


# --- export -----------------------------------------------------------------------------------


class CharExport:
    """What the SavedModel serves, built from a trained CharRNN's layers.

    State layout: every layer's states (`[h, c]` for an LSTM, `[h]` otherwise),
    each `(batch, units)`, concatenated along the last axis into `(batch, S)`.
    An empty prompt starts from the initial state with a newline as the last
    character read, so generation starts at the beginning of a line.
    """

    def __init__(self, model, lookup):
        import keras
        import tensorflow as tf

        self.lookup = lookup
        self.vocabulary_strings = tf.constant(lookup.get_vocabulary())
        self.newline_id = int(lookup(tf.constant("\n")).numpy())
        self.embedding = model.get_layer("embedding")
        self.output_layer = model.get_layer("logits")
        # Sequence readers: the trained layers' configs, made stateless and returning states.
        self.readers = []
        for index in range(model.num_layers):
            trained = model.get_layer(f"recurrent_{index}")
            config = trained.get_config()
            config.update(
                stateful=False,
                return_sequences=True,
                return_state=True,
                dropout=0.0,
                recurrent_dropout=0.0,
                name=f"reader_{index}",
            )
            reader = type(trained).from_config(config)
            reader.build((None, None, trained.cell.kernel.shape[0]))
            reader.set_weights(trained.get_weights())
            self.readers.append(reader)
        self.state_sizes = [
            [reader.cell.units] * len(reader.cell.get_initial_state(1)) for reader in self.readers
        ]
        self.state_size = sum(sum(sizes) for sizes in self.state_sizes)
        self.keras = keras
        self.tf = tf

    # -- state packing ---------------------------------------------------------

    def _unpack(self, state):
        flat = self.tf.split(state, [s for sizes in self.state_sizes for s in sizes], axis=-1)
        per_layer, start = [], 0
        for sizes in self.state_sizes:
            per_layer.append(flat[start : start + len(sizes)])
            start += len(sizes)
        return per_layer

    def _pack(self, per_layer):
        return self.tf.concat([s for states in per_layer for s in states], axis=-1)

    # -- the maths -------------------------------------------------------------

    def _step(self, ids, state):
        tf = self.tf
        x = self.embedding(ids)
        new_states = []
        for reader, states in zip(self.readers, self._unpack(state), strict=True):
            x, states = reader.cell(x, list(states))
            new_states.append(states if isinstance(states, (list, tuple)) else [states])
        logits = tf.cast(self.output_layer(x), tf.float32)
        return logits, self._pack(new_states)

    def _read(self, ids, mask, state):
        """Run (batch, time) ids through the stack: (logits (batch, time, V), new state)."""
        x = self.embedding(ids)
        new_states = []
        for reader, states in zip(self.readers, self._unpack(state), strict=True):
            x, *states = reader(x, mask=mask, initial_state=list(states))
            new_states.append(states)
        return self.tf.cast(self.output_layer(x), self.tf.float32), self._pack(new_states)

    def _ids(self, text):
        """Ragged int32 ids of each string's characters (invalid UTF-8 replaced)."""
        tf = self.tf
        chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")
        return tf.cast(tf.ragged.map_flat_values(self.lookup, chars), tf.int32)

    def _chunked(self, ids, lengths, state, targets=None):
        """Read padded ids chunk by chunk; returns (state, summed NLL of targets per row)."""
        tf = self.tf
        batch = tf.shape(ids)[0]
        total = tf.shape(ids)[1]
        num_chunks = (total + SCORE_CHUNK - 1) // SCORE_CHUNK
        padded = num_chunks * SCORE_CHUNK
        ids = tf.pad(ids, [[0, 0], [0, padded - total]])
        if targets is not None:
            targets = tf.pad(targets, [[0, 0], [0, padded - total]])
        positions = tf.range(padded)[None, :]
        mask = positions < lengths[:, None]

        def body(k, state, nats):
            start, size = [0, k * SCORE_CHUNK], [batch, SCORE_CHUNK]
            chunk_ids, chunk_mask = tf.slice(ids, start, size), tf.slice(mask, start, size)
            logits, state = self._read(chunk_ids, chunk_mask, state)
            if targets is not None:
                chunk_targets = tf.slice(targets, start, size)
                nll = tf.nn.sparse_softmax_cross_entropy_with_logits(chunk_targets, logits)
                nats += tf.reduce_sum(tf.where(chunk_mask, nll, 0.0), axis=1)
            return k + 1, state, nats

        _, state, nats = tf.while_loop(
            lambda k, *_: k < num_chunks,
            body,
            (0, state, tf.zeros([batch], tf.float32)),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, self.state_size]),
                tf.TensorShape([None]),
            ),
        )
        return state, nats

    # -- endpoints -------------------------------------------------------------

    def initial_state(self, batch_size):
        tf = self.tf
        tf.debugging.assert_non_negative(batch_size, message="initial_state: batch_size < 0")
        return tf.zeros([batch_size, self.state_size], tf.float32)

    def step(self, ids, state):
        logits, state = self._step(ids, state)
        return {"logits": logits, "state": state}

    def score(self, text):
        tf = self.tf
        ids = self._ids(text)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(0)
        # Character t + 1 is scored from the state after reading characters 0..t.
        inputs, targets = dense[:, :-1], dense[:, 1:]
        scored = tf.maximum(lengths - 1, 0)
        _, nats = self._chunked(inputs, scored, self.initial_state(tf.shape(text)[0]), targets)
        return {"nats": nats, "chars": scored}

    def generate(self, prompt, num_chars, temperature):
        tf = self.tf
        with tf.control_dependencies(
            [
                tf.debugging.assert_non_negative(
                    num_chars, message="generate: num_chars must be >= 0"
                ),
                tf.debugging.assert_non_negative(
                    temperature, message="generate: temperature must be >= 0 (0 is greedy)"
                ),
            ]
        ):
            num_chars = tf.identity(num_chars)
        ids = self._ids(prompt)
        batch = tf.shape(prompt)[0]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(0)
        # Read all but the last prompt character as a sequence; the loop starts from the last.
        state, _ = self._chunked(dense, tf.maximum(lengths - 1, 0), self.initial_state(batch))
        last_index = tf.maximum(lengths - 1, 0)
        last = tf.gather(tf.pad(dense, [[0, 0], [0, 1]]), last_index, batch_dims=1)
        current = tf.where(lengths > 0, last, self.newline_id)
        never_unknown = tf.one_hot(0, tf.shape(self.vocabulary_strings)[0], on_value=-1e9)

        def body(i, current, state, generated):
            logits, state = self._step(current, state)
            logits += never_unknown
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            scaled = logits / tf.maximum(temperature, 1e-6)
            sampled = tf.cast(tf.random.categorical(scaled, 1)[:, 0], tf.int32)
            following = tf.where(temperature > 0, sampled, greedy)
            return i + 1, following, state, generated.write(i, following)

        _, _, _, generated = tf.while_loop(
            lambda i, *_: i < num_chars,
            body,
            (0, current, state, tf.TensorArray(tf.int32, size=num_chars, element_shape=[None])),
        )
        # An empty TensorArray of unknown element shape cannot be stacked (num_chars = 0).
        new_ids = tf.cond(
            num_chars > 0,
            lambda: tf.transpose(generated.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )
        new_text = tf.strings.reduce_join(tf.gather(self.vocabulary_strings, new_ids), axis=1)
        return prompt + new_text

    def vocabulary(self):
        return self.vocabulary_strings


def export_saved_model(model, lookup, path):
    import keras
    import tensorflow as tf

    export = CharExport(model, lookup)
    archive = keras.export.ExportArchive()
    archive.track(lookup)
    archive.track(export.embedding)
    archive.track(export.output_layer)
    for reader in export.readers:
        archive.track(reader)
    archive.add_endpoint(
        "generate",
        export.generate,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="num_chars"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ],
    )
    archive.add_endpoint(
        "score", export.score, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    archive.add_endpoint(
        "initial_state",
        export.initial_state,
        input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")],
    )
    archive.add_endpoint(
        "step",
        export.step,
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="ids"),
            tf.TensorSpec([None, export.state_size], tf.float32, name="state"),
        ],
    )
    archive.add_endpoint("vocabulary", export.vocabulary, input_signature=[])
    archive.write_out(str(path), verbose=False)


# --- training ---------------------------------------------------------------------------------


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train a char-level language model on tiny-shakespeare with truncated BPTT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--cell", choices=["simple", "lstm", "gru"], default=DEFAULTS["cell"])
    add("--layers", type=int, default=DEFAULTS["layers"])
    add("--units", type=int, default=DEFAULTS["units"])
    add("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"])
    add("--seq-len", type=int, default=DEFAULTS["seq_len"], help="truncated-BPTT window")
    add("--batch-size", type=int, default=DEFAULTS["batch_size"], help="parallel streams")
    add("--dropout", type=float, default=DEFAULTS["dropout"])
    add("--epochs", type=int, default=DEFAULTS["epochs"], help="at most; early stopping")
    add("--lr", type=float, default=DEFAULTS["lr"], help="Adam learning rate")
    add("--clipnorm", type=float, default=DEFAULTS["clipnorm"], help="global-norm clip")
    add("--patience", type=int, default=DEFAULTS["patience"])
    add("--seed", type=int, default=DEFAULTS["seed"])
    add("--data-dir", default=None, help="tensorflow-datasets data dir")
    add(
        "--manual-dir",
        default=None,
        help="folder with tiny-shakespeare's input.txt, for tfds to prepare the data offline",
    )
    add("--out", default=None, help="run folder (default: runs/char_text-<UTC time>)")
    add(
        "--export-dir",
        default=None,
        help="where char_rnn/ and char_rnn.keras go (default: saved_models/, or the run "
        "folder with --quick)",
    )
    add("--quick", action="store_true", help="a few thousand characters, one epoch, tiny model")
    args = parser.parse_args(argv)
    args.max_chars = None
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def train(argv):
    args = parse_train_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    import rnn_keras

    run_dir, export_dir = common.start_run(args, "char_text")
    keras.utils.set_random_seed(args.seed)
    started = time.time()

    texts = load_splits(args.data_dir, args.manual_dir, args.max_chars)
    lookup = make_lookup(texts["train"])
    ids = {split: encode(lookup, text) for split, text in texts.items()}
    print(
        f"characters: train {len(ids['train'])}, validation {len(ids['validation'])}, "
        f"test {len(ids['test'])}; vocabulary {lookup.vocabulary_size()} (id 0 = unknown)"
    )

    model = rnn_keras.CharRNN(
        lookup.vocabulary_size(),
        cell=args.cell,
        units=args.units,
        num_layers=args.layers,
        embedding_dim=args.embedding_dim,
        dropout=args.dropout,
        stateful=True,
        batch_size=args.batch_size,
        name="char_rnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    model.summary(print_fn=lambda line, **_: print(line))

    gradient_norms = []
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        # Truncated BPTT: a new pass over the streams starts from zero state, and so
        # does every evaluation (fit evaluates at the end of each epoch).
        keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: model.reset_states(),
            on_test_begin=lambda logs: model.reset_states(),
            on_train_batch_end=lambda batch, logs: gradient_norms.append(
                float(logs["gradient_norm"])
            ),
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=args.patience, restore_best_weights=True
        ),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=1),
    ]
    train_ds = window_dataset(ids["train"], args.batch_size, args.seq_len)
    val_ds = window_dataset(ids["validation"], args.batch_size, args.seq_len)
    fit_started = time.time()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=2 if args.quick else "auto",
    )
    train_seconds = time.time() - fit_started

    common.atomic_replace(
        lambda tmp: export_saved_model(model, lookup, tmp), export_dir / "char_rnn"
    )
    common.atomic_replace(lambda tmp: model.save(tmp), export_dir / "char_rnn.keras")

    # Final figures through the exported model: each split scored as one stream.
    served = tf.saved_model.load(str(export_dir / "char_rnn"))
    figures = {}
    for split in ("validation", "test"):
        result = served.score(tf.constant([texts[split]]))
        nats = float(result["nats"][0]) / int(result["chars"][0])
        figures[split] = {
            "nats_per_char": nats,
            "bits_per_char": nats / math.log(2),
            "chars": int(result["chars"][0]),
        }
        print(f"{split}: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char")

    samples = {}
    for temperature in SAMPLE_TEMPERATURES:
        text = served.generate(
            tf.constant([SAMPLE_PROMPT]),
            tf.constant(SAMPLE_CHARS),
            tf.constant(temperature, tf.float32),
        )
        samples[temperature] = text.numpy()[0].decode("utf-8")
    (run_dir / "samples.txt").write_text(
        "".join(f"=== temperature {t} ===\n{s}\n\n" for t, s in samples.items())
    )

    history_dict = common.history_dict(history)
    metrics = {
        "validation": figures["validation"],
        "test": figures["test"],
        "best_epoch_val_loss_streams": float(np.min(history_dict["val_loss"])),
        "epochs_run": len(history_dict["loss"]),
        "history": history_dict,
        "gradient_norm_per_step": gradient_norms,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(model.count_params()),
        "vocabulary_size": int(lookup.vocabulary_size()),
        "machine": common.machine_info(),
        "samples": {str(t): s for t, s in samples.items()},
    }
    common.write_json(run_dir / "metrics.json", metrics)
    common.plot_history(
        history_dict,
        run_dir / "learning_curve.png",
        ["loss"],
        f"tiny-shakespeare {args.cell}: validation "
        f"{figures['validation']['nats_per_char']:.3f} nats/char",
    )
    print(f"training {train_seconds / 60:.1f} min\nrun folder: {run_dir}")
    return metrics


def generate(argv):
    parser = argparse.ArgumentParser(
        prog="char_text.py generate", description="Generate text from a char_rnn SavedModel."
    )
    parser.add_argument("--model", default=str(common.REPO_ROOT / "saved_models" / "char_rnn"))
    parser.add_argument("--prompt", default=SAMPLE_PROMPT)
    parser.add_argument("--chars", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument(
        "--timing",
        action="store_true",
        help="also report generation speed on stderr (median of 3 calls after a warm-up)",
    )
    args = parser.parse_args(argv)
    if args.chars < 0 or args.temperature < 0:
        parser.error("--chars and --temperature must be >= 0")

    import tensorflow as tf

    loaded = tf.saved_model.load(args.model)
    call_args = (
        tf.constant([args.prompt]),
        tf.constant(args.chars, tf.int32),
        tf.constant(args.temperature, tf.float32),
    )
    text = loaded.generate(*call_args)
    print(text.numpy()[0].decode("utf-8"))
    if args.timing:
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            loaded.generate(*call_args).numpy()
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        print(
            f"generated {args.chars} characters after a {len(args.prompt)}-character prompt "
            f"in {median:.3f} s: {args.chars / median:,.0f} characters/s (one stream)",
            file=sys.stderr,
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        generate(argv[1:])
    else:
        train(argv[1:] if argv[:1] == ["train"] else argv)


if __name__ == "__main__":
    main()
