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
RECIPE_ARGS = ("features", "max_tokens", "ngrams", "epochs", "batch_size", "patience", "seed")
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
    common.add_validation_flags(parser)  # and --skip-test
    return common.parse_args(parser, argv, QUICK)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from rnn_keras import training
    from rnn_keras.datasets.imdb import load_split
    from rnn_keras.training import recipes

    run_dir, _ = common.start_run(args, "imdb_baseline")
    keras.utils.set_random_seed(args.seed)
    started = time.time()
    (fit_texts, fit_labels), val_data, validation = common.imdb_train_split(args)
    model, history, seconds = recipes.train_ngram_classifier(
        (fit_texts, fit_labels),
        val_data,
        run_dir=run_dir,
        **{key: getattr(args, key) for key in RECIPE_ARGS},
        learning_rate=args.lr,
        verbose=2 if args.quick else "auto",
    )
    best_val = max(history.history["val_accuracy"])
    test_accuracy = None
    if not args.skip_test:
        test_texts, test_labels = load_split(args.data_dir, "test", args.test_examples)
        _, test_accuracy = model.evaluate(
            recipes.text_batches(test_texts, test_labels, args.batch_size), verbose=0
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
        "history": training.history_dict(history),
        "train_seconds": round(seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "parameters": int(model.count_params()),
        "machine": training.machine_info(),
    }
    training.write_json(run_dir / "metrics.json", metrics)
    print(f"run folder: {run_dir}")
    return metrics


if __name__ == "__main__":
    main()
