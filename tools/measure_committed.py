"""Re-measures the headline figures of the committed models through their SavedModels alone
(`tf.saved_model.load`), for comparison with the model card and the reports.

    python tools/measure_committed.py --tfds-dir ../shared/data/tensorflow_datasets \
        --fsdd-dir ../shared/data/fsdd --jsb-dir ../shared/data/jsb_chorales \
        --multi30k-dir ../shared/data/multi30k --pm25-dir ../shared/data/beijing_pm25 \
        [--only imdb char_rnn ...]

Writes nothing; prints each figure beside the one its report gives.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parents[1]
SAVED = REPO_ROOT / "saved_models"


def load(name):
    return tf.saved_model.load(str(SAVED / name))


def imdb(args):
    from rnn_keras.datasets.imdb import load_split

    model = load("imdb")
    texts, labels = load_split(args.tfds_dir, "test")
    served, members = [], {}
    for start in range(0, len(texts), 500):
        batch = tf.constant(texts[start : start + 500])
        served.append(model.serve(batch).numpy())
        for name, values in model.serve_members(batch).items():
            members.setdefault(name, []).append(values.numpy())
    figures = {"test accuracy": float(np.mean((np.concatenate(served) > 0.5) == labels))}
    for name, parts in members.items():
        figures[f"test accuracy, member {name}"] = float(
            np.mean((np.concatenate(parts) > 0.5) == labels)
        )
    return figures


def char_rnn(args):
    import tensorflow_datasets as tfds

    model = load("char_rnn")
    data = tfds.load("tiny_shakespeare", data_dir=args.tfds_dir)
    figures = {}
    for split in ("validation", "test"):
        text = next(iter(tfds.as_numpy(data[split])))["text"].decode()
        scored = model.score(tf.constant([text]))
        figures[f"{split} nats/char"] = float(
            scored["nats"][0] / tf.cast(scored["chars"][0], tf.float32)
        )
    return figures


def pm25(args):
    import sys

    from rnn_keras.evaluation.forecast_baselines import horizon_errors

    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    import timeseries  # the experiment's own windows of the 2014 test year

    model = load("pm25")
    table = timeseries.read_table(None, args.pm25_dir)
    _, inputs, targets = timeseries.windows_of(table, "test")
    forecasts = []
    for start in range(0, len(targets), 512):
        part = {name: tf.constant(values[start : start + 512]) for name, values in inputs.items()}
        forecasts.append(model.serve(**part).numpy())
    return {"test mean MAE (2014)": horizon_errors(np.concatenate(forecasts), targets)["mean_mae"]}


def chorales(args):
    from rnn_keras.datasets.chorales import load_chorales

    model = load("chorales")
    test = load_chorales(args.jsb_dir)["test"]
    nats = [float(model.score(np.asarray(roll, "float32")[None]).numpy()[0]) for roll in test]
    lengths = np.array([len(roll) for roll in test])
    return {"test nats per time step": float(np.sum(np.array(nats) * lengths) / lengths.sum())}


def speech_digits(args):
    from rnn_keras.datasets.fsdd import DIGIT_WORDS, load_recordings, official_split

    model = load("speech_digits")
    recordings = load_recordings(args.fsdd_dir)
    test = recordings.subset(official_split(recordings)[1])
    transcripts = []
    for start in range(0, len(test.waveforms), 50):
        clips = test.waveforms[start : start + 50]
        lengths = np.array([len(c) for c in clips], "int32")
        batch = np.zeros([len(clips), lengths.max()], "float32")
        for row, clip in enumerate(clips):
            batch[row, : len(clip)] = clip
        transcripts += [t.decode() for t in model.transcribe(batch, lengths).numpy()]
    right = [t == DIGIT_WORDS[d] for t, d in zip(transcripts, test.digits, strict=True)]
    return {"official test accuracy": float(np.mean(right))}


def translate_de_en(args):
    from rnn_keras.datasets.multi30k import load_multi30k
    from rnn_keras.models.translator import bleu_scores

    model = load("translate_de_en")
    german, english = load_multi30k("test_2016_flickr", args.multi30k_dir)
    _, english_tok = load_multi30k("test_2016_flickr", args.multi30k_dir, tokenized=True)
    hypotheses = []
    for start in range(0, len(german), 100):
        batch = tf.constant(german[start : start + 100])
        hypotheses += [t.decode() for t in model.translate(batch).numpy()]
    tokenized, raw = bleu_scores(hypotheses, english, english_tok)
    return {"test_2016_flickr BLEU (lowercased tokenized)": tokenized, "sacreBLEU": raw}


MEASURES = {
    "imdb": imdb,
    "char_rnn": char_rnn,
    "pm25": pm25,
    "chorales": chorales,
    "speech_digits": speech_digits,
    "translate_de_en": translate_de_en,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfds-dir")
    parser.add_argument("--fsdd-dir")
    parser.add_argument("--jsb-dir")
    parser.add_argument("--pm25-dir")
    parser.add_argument("--multi30k-dir")
    parser.add_argument("--only", nargs="*", choices=sorted(MEASURES), default=None)
    args = parser.parse_args(argv)
    results = {}
    for name in args.only or MEASURES:
        started = time.perf_counter()
        results[name] = MEASURES[name](args)
        print(name, json.dumps(results[name]), f"({time.perf_counter() - started:.0f} s)")
    return results


if __name__ == "__main__":
    main()
