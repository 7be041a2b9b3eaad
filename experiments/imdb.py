"""IMDB sentiment with rnn_keras cells: train, evaluate on the 25,000 test reviews, export.

    python experiments/imdb.py                     # train the default model (the main job)
    python experiments/imdb.py --quick --out /tmp/run   # a minutes-long smoke run
    python experiments/imdb.py predict "A moving, beautifully shot film."
    echo "Dull and far too long." | python experiments/imdb.py predict

Training writes one run folder (`--out`, default `runs/imdb-<time>`): `config.json`,
`metrics.json` (test accuracy and loss, per-epoch history, wall time, machine),
`learning_curve.png`, TensorBoard logs and the `BackupAndRestore` checkpoint that
lets a killed run resume where it stopped (with `--pretrain-epochs` or
`--pseudo-label-confidence`, also the language model's or the teacher's weights
and the pseudo-labels, so a resumed run skips what it had finished). It exports
into `--export-dir` (default `saved_models/`; the run folder with `--quick`):

* `imdb/`: a SavedModel whose `serve` endpoint maps raw review text, `tf.string`
  of shape [None], to the probability that each review is positive, float32 of
  shape [None]. It loads with `tf.saved_model.load` and needs no code of ours.
* `imdb.keras`: the same model (raw strings in) for `keras.saving.load_model`.

Validation is a fixed, seeded 10% of the training split; the test split is read
once, after training, for the final figure.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.quiet_tensorflow()

# The default configuration: the one whose figures saved_models/README.md reports.
DEFAULTS = {
    "cell": "lstm",
    "bidirectional": True,
    "layers": 1,
    "units": 128,
    "embedding_dim": 128,
    "pooling": "max",
    "max_tokens": 30000,
    "max_length": 800,
    "dropout": 0.4,
    "recurrent_dropout": 0.0,
    "epochs": 6,
    "batch_size": 64,
    "lr": 1e-3,
    "clipnorm": 1.0,
    "weight_decay": 0.0,
    "patience": 2,
    "val_fraction": 0.1,
    "seed": 1337,
    "pretrain_epochs": 0,
    "pretrain_reviews": None,
    "pretrain_vocabulary": 4000,
    "pseudo_label_confidence": 0.0,
    "pseudo_label_reviews": None,
}
# --quick: the same code path on a few hundred reviews, for tests and smoke runs.
QUICK = {
    "train_examples": 400,
    "test_examples": 200,
    "units": 16,
    "embedding_dim": 16,
    "max_tokens": 2000,
    "max_length": 64,
    "epochs": 1,
    "batch_size": 32,
    "pretrain_reviews": 300,
    "pretrain_vocabulary": 500,
    "pseudo_label_reviews": 300,
}
MAX_CHARS_PER_TOKEN = 20  # the text cap: max_length tokens read at most this many bytes each
SERVE_SIGNATURE_NAME = "serve"


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train, evaluate and export an IMDB sentiment classifier built from "
        "rnn_keras cells.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--cell", choices=["simple", "lstm", "gru"], default=DEFAULTS["cell"])
    add("--bidirectional", action=argparse.BooleanOptionalAction, default=DEFAULTS["bidirectional"])
    add("--layers", type=int, default=DEFAULTS["layers"], help="stacked recurrent layers")
    add("--units", type=int, default=DEFAULTS["units"], help="units per direction")
    add("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"])
    add("--pooling", choices=["last", "mean", "max"], default=DEFAULTS["pooling"])
    add("--max-tokens", type=int, default=DEFAULTS["max_tokens"], help="vocabulary size")
    add(
        "--max-length",
        type=int,
        default=DEFAULTS["max_length"],
        help="tokens read per review (the first ones)",
    )
    add("--dropout", type=float, default=DEFAULTS["dropout"])
    add("--recurrent-dropout", type=float, default=DEFAULTS["recurrent_dropout"])
    add("--epochs", type=int, default=DEFAULTS["epochs"], help="at most; early stopping")
    add("--batch-size", type=int, default=DEFAULTS["batch_size"])
    add("--lr", type=float, default=DEFAULTS["lr"], help="Adam learning rate")
    add("--clipnorm", type=float, default=DEFAULTS["clipnorm"], help="global-norm clip")
    add(
        "--weight-decay",
        type=float,
        default=DEFAULTS["weight_decay"],
        help="decoupled weight decay (AdamW) when > 0",
    )
    add("--patience", type=int, default=DEFAULTS["patience"], help="early-stopping patience")
    add("--val-fraction", type=float, default=DEFAULTS["val_fraction"])
    add("--seed", type=int, default=DEFAULTS["seed"])
    add(
        "--pretrain-epochs",
        type=int,
        default=DEFAULTS["pretrain_epochs"],
        help="epochs of language-model pretraining on the unlabelled reviews (0: none)",
    )
    add(
        "--pretrain-reviews",
        type=int,
        default=DEFAULTS["pretrain_reviews"],
        help="unlabelled reviews to pretrain on (default: all 50,000)",
    )
    add(
        "--pretrain-vocabulary",
        type=int,
        default=DEFAULTS["pretrain_vocabulary"],
        help="the language model predicts this many most frequent words (others as [UNK])",
    )
    add(
        "--pseudo-label-confidence",
        type=float,
        default=DEFAULTS["pseudo_label_confidence"],
        help="self-training: a teacher trained as usual labels the unlabelled reviews it scores "
        "at least this confident, and a fresh student trains on both (0: off)",
    )
    add(
        "--pseudo-label-reviews",
        type=int,
        default=DEFAULTS["pseudo_label_reviews"],
        help="unlabelled reviews the teacher scores (default: all 50,000)",
    )
    add(
        "--data-dir",
        default=None,
        help="tensorflow-datasets data dir (default: $TFDS_DATA_DIR or tfds's own)",
    )
    add("--out", default=None, help="run folder (default: runs/imdb-<UTC time>)")
    add(
        "--export-dir",
        default=None,
        help="where imdb/ and imdb.keras go (default: saved_models/, or the run folder "
        "with --quick)",
    )
    add("--quick", action="store_true", help="a few hundred reviews, one epoch, tiny model")
    add(
        "--skip-test",
        action="store_true",
        help="do not read the test split (for choosing hyperparameters on validation)",
    )
    args = parser.parse_args(argv)
    if args.pseudo_label_confidence and not 0.5 < args.pseudo_label_confidence < 1.0:
        parser.error(
            "--pseudo-label-confidence must be 0 (off) or between 0.5 and 1 (exclusive). "
            f"Received: {args.pseudo_label_confidence}"
        )
    args.train_examples = args.test_examples = None
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


# --- data -------------------------------------------------------------------------------------


def load_split(data_dir, name, count=None):
    """(texts, labels) NumPy arrays of one `imdb_reviews` split, through tensorflow-datasets.

    `name` is "train", "test" or "unsupervised" (50,000 reviews, label -1); `count`
    keeps the first reviews only.
    """
    import numpy as np
    import tensorflow_datasets as tfds

    spec = name if count is None else f"{name}[:{count}]"
    dataset = tfds.load("imdb_reviews", split=spec, data_dir=data_dir, as_supervised=True)
    texts, labels = [], []
    for text, label in tfds.as_numpy(dataset):
        texts.append(text)
        labels.append(label)
    return np.array(texts, dtype=object), np.array(labels, dtype="float32")


def validation_split(texts, labels, fraction, seed):
    """A fixed, seeded split of the training reviews into (train, validation)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(texts))
    n_val = int(round(fraction * len(texts)))
    val, train = order[:n_val], order[n_val:]
    return (texts[train], labels[train]), (texts[val], labels[val])


def make_vectorizer(texts, max_tokens, max_length):
    """TextVectorization adapted on `texts` (training reviews only)."""
    import keras
    import tensorflow as tf

    import rnn_keras.text

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=rnn_keras.text.ReviewStandardizer(max_chars=MAX_CHARS_PER_TOKEN * max_length),
        output_sequence_length=max_length,
        name="vectorizer",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    return vectorizer


def token_dataset(vectorizer, max_length, texts, labels, batch_size, shuffle_seed=None):
    """tf.data of (int32 ids, label) batches: vectorized once and cached, batched by length.

    The vectorizer pads every review to max_length; the padding (id 0, which no
    token has) is stripped again so that reviews of similar length share a batch.
    """
    import tensorflow as tf

    bucket_width = 50
    boundaries = list(range(bucket_width, max_length, bucket_width))

    def strip_padding(ids, label):
        length = tf.math.count_nonzero(ids, dtype=tf.int32)
        return tf.cast(ids[:length], tf.int32), label

    dataset = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .batch(1024)
        .map(lambda text, label: (vectorizer(text), label), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(strip_padding, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
    )
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.bucket_by_sequence_length(
        lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def language_model_dataset(token_batches, vocabulary, bidirectional):
    """Turns (ids, _) batches into language-model examples: (ids, targets, sample weights).

    The forward direction predicts the next token, the backward direction the
    previous one. Targets are ids below `vocabulary` (TextVectorization orders
    its vocabulary by frequency; rarer words become [UNK], id 1); positions with
    no token to predict get weight 0.
    """
    import tensorflow as tf

    def to_examples(ids, _):
        capped = tf.where(ids >= vocabulary, tf.ones_like(ids), ids)
        padding = tf.zeros_like(capped[:, :1])
        following = tf.concat([capped[:, 1:], padding], axis=1)
        targets = [following]
        if bidirectional:
            preceding = tf.concat([padding, capped[:, :-1]], axis=1)
            targets.append(tf.where(ids > 0, preceding, tf.zeros_like(preceding)))
        weights = [tf.cast(target > 0, tf.float32) for target in targets]
        return ids, tuple(targets), tuple(weights)

    return token_batches.map(to_examples, num_parallel_calls=tf.data.AUTOTUNE)


# --- model ------------------------------------------------------------------------------------


def build_pretraining_model(args, vocabulary_size):
    """A language model with the classifier's embedding and first recurrent layer.

    ELMo-style: the forward RNN's output at step t predicts token t+1 and (when
    bidirectional) the backward RNN's output at step t predicts token t-1, each
    through its own Dense softmax over the `args.pretrain_vocabulary` most
    frequent words. It trains on text without labels, as in Dai & Le (2015);
    `transfer_pretrained` then copies its `embedding` and `recurrent_0` weights
    into the classifier, whose layers of those names have the same shapes.
    """
    import keras

    import rnn_keras

    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(
        vocabulary_size, args.embedding_dim, mask_zero=True, name="embedding"
    )(ids)
    states = rnn_keras.recurrent_layer(
        args.cell,
        args.units,
        bidirectional=args.bidirectional,
        merge_mode=None,  # Bidirectional returns [forward, backward], both in reading order
        return_sequences=True,
        name="recurrent_0",
    )(x)
    if not args.bidirectional:
        states = [states]
    names = ["next_token", "previous_token"]
    logits = [
        keras.layers.Dense(args.pretrain_vocabulary, name=name)(state)
        for name, state in zip(names, states, strict=False)
    ]
    return keras.Model(ids, tuple(logits), name="pretraining_language_model")


def transfer_pretrained(language_model, classifier):
    for name in ("embedding", "recurrent_0"):
        classifier.get_layer(name).set_weights(language_model.get_layer(name).get_weights())


def build_classifier(args, vocabulary_size):
    import rnn_keras

    return rnn_keras.SequenceClassifier(
        num_classes=1,
        cell=args.cell,
        units=args.units,
        num_layers=args.layers,
        bidirectional=args.bidirectional,
        pooling=args.pooling,
        vocabulary_size=vocabulary_size,
        embedding_dim=args.embedding_dim,
        dropout=args.dropout,
        recurrent_dropout=args.recurrent_dropout,
        output_activation="sigmoid",
        name="sentiment_classifier",
    )


def text_model(vectorizer, classifier):
    """Raw strings (batch,) -> probability positive (batch, 1): vectorizer + classifier."""
    import keras

    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, classifier(vectorizer(text)), name="imdb_sentiment")


def export_saved_model(model, path):
    """A SavedModel whose `serve` maps tf.string [None] to float32 [None]."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(text):
        return tf.reshape(tf.cast(model(text, training=False), tf.float32), [-1])

    archive.add_endpoint(
        name=SERVE_SIGNATURE_NAME,
        fn=serve,
        input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")],
    )
    archive.write_out(str(path), verbose=False)


def pretrain(args, run_dir, vectorizer, val_texts, classifier):
    """Language-model pretraining on the unlabelled reviews; returns its record for metrics.

    Validation texts (labels unused) measure the language model's held-out loss.
    The pretrained weights are saved in the run folder, so a resumed run that
    had finished pretraining goes straight to the classifier.
    """
    import keras
    import numpy as np

    weights_path = run_dir / "pretrained.weights.h5"
    record_path = run_dir / "pretraining.json"
    language_model = build_pretraining_model(args, vectorizer.vocabulary_size())
    if weights_path.exists() and record_path.exists():
        language_model.load_weights(str(weights_path))
        transfer_pretrained(language_model, classifier)
        print(f"pretraining: resumed from {weights_path}")
        return json.loads(record_path.read_text())

    texts, _ = load_split(args.data_dir, "unsupervised", args.pretrain_reviews)
    print(f"pretraining: language model on {len(texts)} unlabelled reviews")

    def batches(texts, shuffle_seed):
        tokens = token_dataset(
            vectorizer,
            args.max_length,
            texts,
            np.zeros(len(texts), "float32"),
            args.batch_size,
            shuffle_seed,
        )
        return language_model_dataset(tokens, args.pretrain_vocabulary, args.bidirectional)

    outputs = len(language_model.outputs)
    language_model.compile(
        optimizer=keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm),
        loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)] * outputs,
        jit_compile=False,
    )
    started = time.time()
    history = language_model.fit(
        batches(texts, args.seed),
        validation_data=batches(val_texts, None),
        epochs=args.pretrain_epochs,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(run_dir / "backup_pretraining")),
            keras.callbacks.TensorBoard(str(run_dir / "tensorboard_pretraining")),
        ],
        shuffle=False,
        verbose=2 if args.quick else "auto",
    )
    record = {
        "reviews": len(texts),
        "epochs": args.pretrain_epochs,
        "predicted_vocabulary": args.pretrain_vocabulary,
        "seconds": round(time.time() - started, 1),
        "history": common.history_dict(history),
    }
    transfer_pretrained(language_model, classifier)
    language_model.save_weights(str(weights_path))
    common.write_json(record_path, record)
    return record


# --- self-training ----------------------------------------------------------------------------


def score_reviews(classifier, vectorizer, max_length, texts, batch_size):
    """The classifier's probability positive for each text, in the order of `texts`.

    Reviews go through the same length-bucketed pipeline as training (so short
    reviews do not pay for max_length steps); each carries its index to put its
    score back in place.
    """
    import numpy as np
    import tensorflow as tf

    indices = np.arange(len(texts), dtype="float32")  # exact in float32 below 2**24
    batches = token_dataset(vectorizer, max_length, texts, indices, batch_size)
    classify = tf.function(
        lambda ids: classifier(ids, training=False),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    scores = np.full(len(texts), np.nan, dtype="float32")
    for ids, index in batches:
        scores[index.numpy().astype("int64")] = classify(ids).numpy().reshape(-1)
    if np.isnan(scores).any():
        raise RuntimeError(
            f"score_reviews: {int(np.isnan(scores).sum())} of {len(texts)} reviews got no score "
            "from the pipeline (expected every review to be scored once)"
        )
    return scores


def pseudo_label(args, run_dir, vectorizer, teacher):
    """Self-training's data: the unlabelled reviews the teacher is confident about.

    Keeps the reviews scored >= c or <= 1 - c (c = --pseudo-label-confidence),
    labelled 1 or 0. Returns (texts, labels, record); the labels and the record
    are saved in the run folder, so a resumed run does not score them again.
    """
    import numpy as np

    labels_path = run_dir / "pseudo_labels.npz"
    record_path = run_dir / "pseudo_labels.json"
    texts, _ = load_split(args.data_dir, "unsupervised", args.pseudo_label_reviews)
    if labels_path.exists() and record_path.exists():
        saved = np.load(labels_path)
        print(f"self-training: pseudo-labels resumed from {labels_path}")
        return texts[saved["indices"]], saved["labels"], json.loads(record_path.read_text())

    started = time.time()
    scores = score_reviews(teacher, vectorizer, args.max_length, texts, args.batch_size)
    confidence = args.pseudo_label_confidence
    keep = np.flatnonzero((scores >= confidence) | (scores <= 1.0 - confidence))
    labels = (scores[keep] >= 0.5).astype("float32")
    record = {
        "confidence": confidence,
        "unlabelled_reviews": len(texts),
        "kept": len(keep),
        "kept_positive_fraction": float(labels.mean()) if len(keep) else None,
        "seconds": round(time.time() - started, 1),
    }
    print(
        f"self-training: the teacher labels {len(keep)} of {len(texts)} unlabelled reviews "
        f"(confidence >= {confidence}; {labels.mean() if len(keep) else 0:.1%} positive)"
    )
    np.savez(labels_path, indices=keep, labels=labels)
    common.write_json(record_path, record)
    return texts[keep], labels, record


# --- commands ---------------------------------------------------------------------------------


def compile_classifier(args, classifier):
    import keras

    classifier.compile(
        optimizer=keras.optimizers.AdamW(
            args.lr, weight_decay=args.weight_decay, global_clipnorm=args.clipnorm
        )
        if args.weight_decay
        else keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        # XLA makes the recurrent loop slower on this CPU (measured); see README.
        jit_compile=False,
    )


def fit_classifier(args, run_dir, classifier, train_ds, val_ds, phase=""):
    """Trains with early stopping on validation accuracy; returns (history, seconds).

    `phase` suffixes the BackupAndRestore and TensorBoard folder names: "" for the
    classifier, "_teacher" and "_student" for self-training's two models.
    """
    import keras

    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / f"backup{phase}")),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=args.patience,
            restore_best_weights=True,
        ),
        keras.callbacks.TensorBoard(str(run_dir / f"tensorboard{phase}")),
    ]
    started = time.time()
    history = classifier.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=2 if args.quick else "auto",
    )
    return history, time.time() - started


def new_classifier(args, run_dir, vectorizer, val_texts):
    """A compiled classifier, with the language model's weights when pretraining is on.

    Returns (classifier, pretraining record or None). Pretraining runs once per
    run folder; a second call (self-training's student) reuses its weights.
    """
    classifier = build_classifier(args, vectorizer.vocabulary_size())
    pretraining = None
    if args.pretrain_epochs:
        pretraining = pretrain(args, run_dir, vectorizer, val_texts, classifier)
    compile_classifier(args, classifier)
    return classifier, pretraining


def train_teacher(args, run_dir, vectorizer, val_texts, train_ds, val_ds):
    """Self-training's first model, trained as usual; saved so a resumed run skips it."""
    weights_path = run_dir / "teacher.weights.h5"
    record_path = run_dir / "teacher.json"
    teacher, _ = new_classifier(args, run_dir, vectorizer, val_texts)
    if weights_path.exists() and record_path.exists():
        teacher.load_weights(str(weights_path))
        print(f"self-training: teacher resumed from {weights_path}")
        return teacher, json.loads(record_path.read_text())
    history, seconds = fit_classifier(args, run_dir, teacher, train_ds, val_ds, "_teacher")
    record = {
        "history": common.history_dict(history),
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "seconds": round(seconds, 1),
    }
    teacher.save_weights(str(weights_path))
    common.write_json(record_path, record)
    return teacher, record


def train(argv):
    args = parse_train_args(argv)
    import keras
    import numpy as np

    run_dir, export_dir = common.start_run(args, "imdb")
    keras.utils.set_random_seed(args.seed)

    started = time.time()
    train_texts, train_labels = load_split(args.data_dir, "train", args.train_examples)
    test_texts, test_labels = load_split(args.data_dir, "test", args.test_examples)
    (fit_texts, fit_labels), (val_texts, val_labels) = validation_split(
        train_texts, train_labels, args.val_fraction, args.seed
    )
    print(f"reviews: train {len(fit_texts)}, validation {len(val_texts)}, test {len(test_texts)}")

    vectorizer = make_vectorizer(fit_texts, args.max_tokens, args.max_length)
    train_ds = token_dataset(
        vectorizer, args.max_length, fit_texts, fit_labels, args.batch_size, args.seed
    )
    val_ds = token_dataset(vectorizer, args.max_length, val_texts, val_labels, args.batch_size)
    test_ds = token_dataset(vectorizer, args.max_length, test_texts, test_labels, args.batch_size)

    self_training = None
    extra_seconds = 0.0
    if args.pseudo_label_confidence:
        teacher, teacher_record = train_teacher(
            args, run_dir, vectorizer, val_texts, train_ds, val_ds
        )
        pseudo_texts, pseudo_labels, labelling = pseudo_label(args, run_dir, vectorizer, teacher)
        self_training = {"teacher": teacher_record, "pseudo_labels": labelling}
        extra_seconds = teacher_record["seconds"] + labelling["seconds"]
        train_ds = token_dataset(
            vectorizer,
            args.max_length,
            np.concatenate([fit_texts, pseudo_texts]),
            np.concatenate([fit_labels, pseudo_labels]),
            args.batch_size,
            args.seed,
        )
        keras.utils.set_random_seed(args.seed + 1)  # the student's start, also on resume
    classifier, pretraining = new_classifier(args, run_dir, vectorizer, val_texts)
    classifier.summary(print_fn=lambda line, **_: print(line))
    history, train_seconds = fit_classifier(
        args, run_dir, classifier, train_ds, val_ds, "_student" if self_training else ""
    )
    pretrain_seconds = pretraining["seconds"] if pretraining else 0.0
    test_loss = test_accuracy = None
    if not args.skip_test:
        test_loss, test_accuracy = classifier.evaluate(test_ds, verbose=0)
        print(
            f"test accuracy {test_accuracy:.4f}, loss {test_loss:.4f} ({len(test_texts)} reviews)"
        )
    total_train_seconds = pretrain_seconds + extra_seconds + train_seconds
    print(
        f"training {total_train_seconds / 60:.1f} min (pretraining {pretrain_seconds / 60:.1f}, "
        f"teacher and pseudo-labelling {extra_seconds / 60:.1f}, classifier "
        f"{train_seconds / 60:.1f}); best validation accuracy "
        f"{max(history.history['val_accuracy']):.4f}"
    )

    model = text_model(vectorizer, classifier)
    common.atomic_replace(lambda tmp: export_saved_model(model, tmp), export_dir / "imdb")
    common.atomic_replace(lambda tmp: model.save(tmp), export_dir / "imdb.keras")

    metrics = {
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "test_reviews": None if args.skip_test else len(test_texts),
        "train_reviews": len(fit_texts),
        "validation_reviews": len(val_texts),
        "best_val_accuracy": float(max(history.history["val_accuracy"])),
        "epochs_run": len(history.history["loss"]),
        "history": common.history_dict(history),
        "train_seconds": round(total_train_seconds, 1),
        "classifier_train_seconds": round(train_seconds, 1),
        "pretraining": pretraining,
        "self_training": self_training,
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(classifier.count_params()),
        "machine": common.machine_info(),
        "exported_to": str(export_dir),
        "tensorflow_dataset": "imdb_reviews/plain_text (tensorflow-datasets)",
    }
    common.write_json(run_dir / "metrics.json", metrics)
    common.plot_history(
        history.history,
        run_dir / "learning_curve.png",
        ["loss", "accuracy"],
        f"IMDB {args.cell}: best validation accuracy {max(history.history['val_accuracy']):.4f}",
    )
    print(f"run folder: {run_dir}\nexported: {export_dir / 'imdb'}, {export_dir / 'imdb.keras'}")
    return metrics


def predict(argv):
    parser = argparse.ArgumentParser(
        prog="imdb.py predict",
        description="Print the probability that each review is positive, from a SavedModel "
        "(texts as arguments, or one per line on stdin).",
    )
    parser.add_argument("texts", nargs="*", help="review texts (default: read stdin)")
    parser.add_argument("--model", default=str(common.REPO_ROOT / "saved_models" / "imdb"))
    args = parser.parse_args(argv)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]

    import tensorflow as tf

    loaded = tf.saved_model.load(args.model)  # keep a reference: it owns the variables
    serve = getattr(loaded, SERVE_SIGNATURE_NAME)
    probabilities = serve(tf.constant(texts, dtype=tf.string)).numpy()
    for text, probability in zip(texts, probabilities, strict=True):
        preview = text if len(text) <= 70 else text[:67] + "..."
        print(f"{probability:.4f}\t{preview}")
    return probabilities


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["predict"]:
        predict(argv[1:])
    else:
        train(argv[1:] if argv[:1] == ["train"] else argv)


if __name__ == "__main__":
    main()
