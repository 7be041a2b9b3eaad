"""Spoken digits (FSDD): isolated digits, unseen speakers and digit strings to text with CTC.

    python experiments/speech.py --data-dir ../shared/data/fsdd   # all three measurements
    python experiments/speech.py --quick --out /tmp/run             # a minutes-long smoke run

Free Spoken Digit Dataset: 3,000 recordings at 8 kHz, six speakers x ten digits x 50
repetitions. Every model is an `rnn_keras.SpeechRecognizer` (log-mel front end with
SpecAugment in training, bidirectional LSTMs, CTC over the ten digit words) trained through
`model.fit` and chosen (early stopping, best epoch) on a validation split carved from its
training recordings: repetitions 45-49 of the training speakers. Test recordings are read
once, after training.

1. Isolated digits, the official split: test = repetitions 0-4 (300 clips); accuracy is the
   fraction of clips transcribed as exactly their digit word.
2. Unseen speakers: each speaker held out in turn (all 500 of their clips are the test), the
   model trained on the other five.
3. Digit strings: utterances of 1-7 digits joined from recordings with random silences and a
   little noise (`rnn_keras.datasets.fsdd.digit_strings`, seeded). One speaker
   (`--strings-speaker`) is held out: training strings come from repetitions 5-44 of the
   other five, validation strings from their repetitions 45-49, the seen-speaker test strings
   from their repetitions 0-4, and the unseen-speaker test strings from the held-out speaker.
   Digit error rate (edit distance over reference digits) and string accuracy, greedy and
   beam decoding.

Baselines on the same splits: a logistic regression on time-averaged log-mel energies (its L2
penalty chosen on validation) and 1-nearest-neighbour under dynamic time warping.
Exports: `speech_digits/` (the official-split model) and `speech_digit_strings/` (the strings
model), SavedModels with `transcribe(waveforms, lengths) -> string`, and their `.keras` files.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras.datasets import fsdd  # noqa: E402
from rnn_keras.datasets.fsdd import digit_words, train_validation_test  # noqa: E402
from rnn_keras.evaluation.speech_baselines import baseline_accuracies, plot_confusion  # noqa: E402
from rnn_keras.models.speech_recognizer import error_rates, plot_transcription  # noqa: E402
from rnn_keras.training.fit import (  # noqa: E402
    history_dict,
    machine_info,
    plot_history,
    saved_model_step,
    write_json,
)

PUBLISHED = {
    "BiLSTM on MFCCs, 4 speakers, random split (isolated digits)": 0.984,
    "CNN on spectrograms (isolated digits)": 0.97,
}
TARGETS = {
    "official_accuracy": 0.99,
    "unseen_speaker_mean_accuracy": 0.90,
    "strings_digit_error_rate": 0.03,
    "train_minutes": 30,
}
DEFAULTS = dict(
    units=128, layers=2, dropout=0.1, lr=2e-3, clipnorm=1.0, batch_size=32, epochs=50,
    fold_epochs=20, patience=50, strings_epochs=8, strings_batch_size=16, train_strings=3000,
    eval_strings=300, strings_speaker="george", time_masks=2, max_time_mask=8,
    frequency_masks=2, max_frequency_mask=6, speed_perturbation=0.0, beam_width=8, seed=1337,
    folds="all", max_per_digit=None,
)  # fmt: skip
# --quick: the same code path on a few recordings per speaker and digit, two speakers as folds.
QUICK = dict(
    units=16, layers=1, epochs=2, fold_epochs=1, strings_epochs=1, train_strings=40,
    eval_strings=10, folds="george,theo", max_per_digit=12, beam_width=2,
)  # fmt: skip
HELP = {
    "epochs": "at most, for the official-split model (cosine decay over them)",
    "fold_epochs": "at most, for each unseen-speaker model",
    "strings_epochs": "at most, for the digit-strings model",
    "patience": "early stopping on validation sequence accuracy (the default runs every "
    "epoch of the cosine schedule and keeps the best)",
    "train_strings": "digit strings to train on",
    "eval_strings": "digit strings in each of validation, seen-speaker test, unseen test",
    "strings_speaker": "held out of the digit-strings model (its unseen-speaker test)",
    "folds": "'all', or the held-out speakers for the unseen-speaker runs, comma-separated",
    "max_per_digit": "keep repetitions 0..N-1 of each speaker and digit (default: all 50)",
    "speed_perturbation": "x > 0: each training clip resampled every epoch to play between "
    "1 - x and 1 + x times as fast (off by default)",
    "beam_width": "for the beam-search rows (greedy is beam width 1)",
}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_run_flags(
        parser,
        "speech",
        "the SavedModels and .keras files",
        data_help="folder with FSDD's recordings/ (downloaded there when missing; "
        "default: Keras's cache)",
    )
    common.add_flags(parser, DEFAULTS, HELP)
    return common.parse_args(parser, argv, QUICK)


def new_model(args):
    import keras

    from rnn_keras.layers.audio import LogMelFrontEnd
    from rnn_keras.models.backbone import RecurrentBackbone
    from rnn_keras.models.speech_recognizer import SpeechRecognizer

    keras.utils.set_random_seed(args.seed)
    front_end = LogMelFrontEnd(
        time_masks=args.time_masks, max_time_mask=args.max_time_mask,
        frequency_masks=args.frequency_masks, max_frequency_mask=args.max_frequency_mask,
        seed=args.seed, name="front_end",
    )  # fmt: skip
    backbone = RecurrentBackbone(
        "lstm", args.units, num_layers=args.layers, bidirectional=True,
        input_dim=front_end.num_mel_bins, dropout=args.dropout,
    )  # fmt: skip
    return SpeechRecognizer(backbone, fsdd.DIGIT_WORDS, front_end=front_end, dropout=args.dropout)


def fit_recognizer(args, run_dir, phase, train, validation, epochs, batch):
    """A SpeechRecognizer trained on `train` and chosen on `validation` (each: clips and their
    word lists): (model, history, seconds). Adam with a cosine decay of the learning rate over
    `epochs` epochs."""
    from rnn_keras.training.recipes import optimizer

    model = new_model(args)
    steps = epochs * -(-len(train[0]) // batch)
    model.compile(optimizer=optimizer(args.lr, clipnorm=args.clipnorm, decay_steps=steps))
    x = args.speed_perturbation
    train_ds = model.dataset(
        *train, batch, shuffle=True, seed=args.seed, speed=(1 - x, 1 + x) if x else None
    )
    val_ds = model.dataset(*validation, 64)
    print(f"\n== {phase}: {len(train[0])} training clips, {model.count_params():,} parameters")
    history, seconds = common.fit(
        model, args, run_dir, train_ds, val_ds, monitor="val_sequence_accuracy", mode="max",
        phase=f"_{phase}", epochs=epochs,
    )  # fmt: skip
    plot_history(
        history_dict(history), run_dir / f"learning_curve_{phase}.png",
        ["loss", "sequence_accuracy"], f"FSDD, {phase}",
    )  # fmt: skip
    return model, history, seconds


def clips(recordings):
    """(the clips, each one's word list: its digit's word) of isolated-digit `Recordings`."""
    return list(recordings.waveforms), [[word] for word in digit_words(recordings.digits)]


def isolated_digits(args, run_dir, phase, splits, group):
    """A recognizer of isolated digits trained on `splits` = (train, validation, test)
    `Recordings`, once per run folder: (model, record). The record: its test accuracy beside
    the baselines' (`group` names the split); the official split's also holds the confusion
    counts and the learning curve, and its model is kept (`official.keras`) for export."""
    train, validation, test = splits
    epochs = args.epochs if phase == "official" else args.fold_epochs

    def compute():
        model, history, seconds = fit_recognizer(
            args, run_dir, phase, clips(train), clips(validation), epochs, args.batch_size
        )
        transcripts = model.transcribe(list(test.waveforms))
        references = digit_words(test.digits)
        record = {
            "test_accuracy": error_rates(transcripts, references)["sequence_accuracy"],
            "val_accuracy": float(max(history.history["val_sequence_accuracy"])),
            "train_seconds": seconds,
            "epochs": len(history.epoch),
        }
        if phase == "official":
            counts = plot_confusion(
                references, transcripts, run_dir / "confusion_official.png",
                "FSDD official test split (300 clips)",
            )  # fmt: skip
            record |= {"confusion": counts.tolist(), "history": history_dict(history)}
        progress = 1 if sys.stdout.isatty() else 2  # DTW's: a bar on a terminal, else a line
        return model, record | baseline_accuracies(train, validation, test, group, progress)

    model_file = "official.keras" if phase == "official" else None  # the folds: not exported
    return saved_model_step(run_dir, f"result_{phase}", compute, model_file)


def unseen_speakers(args, recordings, run_dir):
    speakers = sorted(set(recordings.speakers.tolist()))
    chosen = speakers if args.folds == "all" else args.folds.split(",")
    folds = {}
    for speaker in chosen:
        splits = train_validation_test(recordings, held_out=speaker)
        group, phase = f"{speaker} held out", f"unseen_{speaker}"
        _, folds[speaker] = isolated_digits(args, run_dir, phase, splits, group)
        print(f"{speaker}: {folds[speaker]['test_accuracy']:.4f}")
    mean = {
        key: float(np.mean([fold[key] for fold in folds.values()]))
        for key in ("test_accuracy", "logistic_regression", "dtw_1nn")
    }
    return {"folds": folds, "mean": mean}


def digit_strings(args, recordings, run_dir):
    sets = fsdd.digit_string_sets(
        recordings, args.strings_speaker, args.train_strings, args.eval_strings
    )
    references = {name: [digit_words(d) for d in digits] for name, (_, digits) in sets.items()}

    def compute():
        model, history, seconds = fit_recognizer(
            args, run_dir, "strings", (sets["train"][0], references["train"]),
            (sets["validation"][0], references["validation"]), args.strings_epochs,
            args.strings_batch_size,
        )  # fmt: skip
        result = {
            "train_seconds": seconds,
            "epochs": len(history.epoch),
            "held_out": args.strings_speaker,
            "history": history_dict(history),
        }
        for name in ("validation", "test_seen", "test_unseen"):
            for decoder, width in (("greedy", 1), ("beam", args.beam_width)):
                transcripts = model.transcribe(sets[name][0], width)
                result[f"{name}_{decoder}"] = error_rates(transcripts, references[name])
        for name in ("test_seen", "test_unseen"):
            plot_transcription(
                model, sets[name][0][0], run_dir / f"transcription_{name}.png",
                f"{name.replace('_', ' ')} string 0, {' '.join(references[name][0])}",
            )  # fmt: skip
        return model, result

    return saved_model_step(run_dir, "result_strings", compute, "strings.keras")


def report(results):
    official_row, unseen, strings = results["official"], results["unseen"], results["strings"]

    def row(label, figures):  # the recognizer and both baselines, on one test set
        print(
            f"{label:<44} {figures['test_accuracy']:10.4f} "
            f"{figures['logistic_regression']:9.4f} {figures['dtw_1nn']:9.4f}"
        )

    print(
        f"\n{'isolated digits (accuracy)':<44} {'BiLSTM-CTC':>10} {'log. reg.':>9} {'DTW 1-NN':>9}"
    )
    row("official split (300 test clips)", official_row)
    for speaker, fold in unseen["folds"].items():
        row("unseen speaker: " + speaker, fold)
    row("unseen speakers, mean", unseen["mean"])
    for name, value in PUBLISHED.items():
        print(f"{'  published: ' + name:<68} {value:.3f}")
    print(f"\n{'digit strings':<44} {'DER':>8} {'strings':>8}")
    for name in ("validation", "test_seen", "test_unseen"):
        for decoder in ("greedy", "beam"):
            figures = strings[f"{name}_{decoder}"]
            print(
                f"{name + ', ' + decoder:<44} {figures['token_error_rate']:8.4f} "
                f"{figures['sequence_accuracy']:8.4f}"
            )


def main(argv=None):
    args = parse(argv)
    run_dir, export_dir = common.start_run(args, "speech")
    started = time.time()
    recordings = fsdd.load_recordings(args.data_dir, max_repetitions=args.max_per_digit or None)
    results = {}
    official_model, results["official"] = isolated_digits(
        args, run_dir, "official", train_validation_test(recordings), "official split"
    )
    results["unseen"] = unseen_speakers(args, recordings, run_dir)
    strings_model, results["strings"] = digit_strings(args, recordings, run_dir)
    exports = [
        *common.export_task(official_model, export_dir, "speech_digits"),
        *common.export_task(strings_model, export_dir, "speech_digit_strings"),
    ]
    train_seconds = (
        results["official"]["train_seconds"]
        + sum(fold["train_seconds"] for fold in results["unseen"]["folds"].values())
        + results["strings"]["train_seconds"]
    )
    metrics = {
        "results": results, "published": PUBLISHED, "targets": TARGETS,
        "train_minutes": train_seconds / 60, "wall_minutes": (time.time() - started) / 60,
        "machine": machine_info(),
    }  # fmt: skip
    write_json(run_dir / "metrics.json", metrics)
    report(results)
    print(
        f"\ntraining: {train_seconds / 60:.1f} minutes (target at most {TARGETS['train_minutes']})"
    )
    common.report_run(run_dir, *exports)
    return metrics


if __name__ == "__main__":
    main()
