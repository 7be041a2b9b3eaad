"""The baseline IMDB must beat: a bag-of-n-grams logistic regression in Keras.

    python experiments/imdb_baseline.py --data-dir ../shared/data/tensorflow_datasets

As a new Keras user would build it: `TextVectorization(max_tokens=100_000, ngrams=2,
output_mode="tf_idf")` (the same standardization as experiments/imdb.py: lowercase,
HTML tags such as `<br />` and punctuation stripped), adapted on the training reviews,
feeding one `Dense(1, activation="sigmoid")`; Adam 1e-3, batch 256, early stopping
on validation accuracy (best weights restored). Same splits as experiments/imdb.py:
the movie-disjoint validation (or `--validation review`), then the 25,000 test reviews
once. Writes `config.json` and `metrics.json` into its run folder; exports nothing.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from imdb_data import add_validation_flags, load_split, validation_split  # noqa: E402

common.quiet_tensorflow()

DEFAULTS = {
    "max_tokens": 100_000,
    "ngrams": 2,
    "features": "tf_idf",
    "epochs": 30,
    "batch_size": 256,
    "lr": 1e-3,
    "patience": 2,
    "val_fraction": 0.1,
    "seed": 1337,
    "train_examples": None,  # all
    "test_examples": None,
}
QUICK = {"train_examples": 400, "test_examples": 200, "max_tokens": 5000, "epochs": 2}
HELP = {
    "max_tokens": "vocabulary of words and n-grams (the most frequent)",
    "ngrams": "n-grams up to this length",
    "features": "tf-idf (the baseline), or NBSVM-style naive-Bayes-weighted presence",
    "epochs": "at most; early stopping",
    "lr": "Adam learning rate",
    "patience": "early-stopping patience",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train and evaluate the bag-of-n-grams logistic regression baseline for "
        "IMDB sentiment.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common.add_flags(parser, DEFAULTS, HELP, {"features": ["tf_idf", "nb"]})
    common.add_run_flags(parser, "imdb_baseline", exports=None)
    add_validation_flags(parser)
    parser.add_argument("--skip-test", action="store_true", help="do not read the test split")
    return common.parse_args(parser, argv, QUICK)


def ngram_classifier(texts, max_tokens, ngrams, labels=None):
    """Raw strings (batch,) -> probability positive (batch, 1): a logistic regression on n-grams.

    Without `labels`: tf-idf features (the baseline). With the training `labels`:
    NBSVM-style features (Wang & Manning 2012), each n-gram's presence (0/1) times
    its naive-Bayes log-count ratio log((p_i / |p|) / (q_i / |q|)), p and q its
    counts in positive and negative reviews plus one.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import rnn_keras.text

    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=rnn_keras.text.ReviewStandardizer(),
        ngrams=ngrams,
        output_mode="tf_idf" if labels is None else "multi_hot",
        name="ngrams",
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(1024))
    text = keras.Input(shape=(), dtype="string", name="text")
    features = vectorizer(text)
    if labels is not None:
        counts = np.ones((2, vectorizer.vocabulary_size()))
        for batch, batch_labels in batches(texts, labels, 1024):
            present = vectorizer(batch).numpy()
            for label in (0, 1):
                counts[label] += present[batch_labels.numpy() == label].sum(axis=0)
        ratio = np.log(counts[1] / counts[1].sum()) - np.log(counts[0] / counts[0].sum())
        features = keras.ops.multiply(features, ratio.astype("float32"))
    probability = keras.layers.Dense(1, activation="sigmoid", name="logistic")(features)
    return keras.Model(text, probability, name="ngram_baseline")


def batches(texts, labels, batch_size, seed=None):
    """tf.data of (raw text, label) batches; reshuffled every epoch with `seed`."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((texts, labels))
    if seed is not None:
        data = data.shuffle(len(texts), seed=seed)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit_baseline(args, run_dir, fit_data, val_data, phase=""):
    """(model, History, seconds): the baseline trained on `fit_data` = (texts, labels),
    early-stopped on `val_data`'s accuracy. `args` holds DEFAULTS' keys and `quick`."""
    import keras

    model = ngram_classifier(
        fit_data[0], args.max_tokens, args.ngrams, fit_data[1] if args.features == "nb" else None
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    history, seconds = common.fit(
        model,
        args,
        run_dir,
        batches(*fit_data, args.batch_size, args.seed),
        batches(*val_data, args.batch_size),
        "val_accuracy",
        "max",
        phase,
    )
    return model, history, seconds


def default_args(quick=False):
    """The baseline's default arguments (with --quick's), as parse_args would give them."""
    return argparse.Namespace(**{**DEFAULTS, **(QUICK if quick else {}), "quick": quick})


def main(argv=None):
    args = parse_args(argv)
    import keras

    run_dir, _ = common.start_run(args, "imdb_baseline")
    keras.utils.set_random_seed(args.seed)
    started = time.time()
    texts, labels = load_split(args.data_dir, "train", args.train_examples)
    (fit_texts, fit_labels), val_data, validation = validation_split(
        texts, labels, args.val_fraction, args.seed, args.validation, args.movie_map
    )
    model, history, seconds = fit_baseline(args, run_dir, (fit_texts, fit_labels), val_data)
    best_val = max(history.history["val_accuracy"])
    test_accuracy = None
    if not args.skip_test:
        test_texts, test_labels = load_split(args.data_dir, "test", args.test_examples)
        _, test_accuracy = model.evaluate(
            batches(test_texts, test_labels, args.batch_size), verbose=0
        )
        print(f"test accuracy {test_accuracy:.4f} ({len(test_texts)} reviews)")
    print(f"training {seconds:.1f} s; best validation accuracy {best_val:.4f}")
    metrics = {
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_reviews": None if test_accuracy is None else len(test_texts),
        "train_reviews": len(fit_texts),
        "validation_reviews": len(val_data[0]),
        "validation": validation,
        "best_val_accuracy": float(best_val),
        "epochs_run": len(history.history["loss"]),
        "history": common.history_dict(history),
        "train_seconds": round(seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(model.count_params()),
        "machine": common.machine_info(),
    }
    common.write_json(run_dir / "metrics.json", metrics)
    print(f"run folder: {run_dir}")
    return metrics


if __name__ == "__main__":
    main()
