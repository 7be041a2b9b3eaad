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
   little noise (`rnn_keras.spoken_digits.digit_strings`, seeded). One speaker
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

from rnn_keras import spoken_digits as sd  # noqa: E402
from rnn_keras.training import history_dict, machine_info, plot_history, write_json  # noqa: E402

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


def load(args):
    recordings = sd.load_recordings(args.data_dir)
    if args.max_per_digit:
        recordings = recordings.subset(recordings.indices < args.max_per_digit)
    return recordings


def splits(recordings, held_out=None):
    """(train, validation, test) Recordings: the official split, or `held_out`'s clips as the
    test. Validation: the last 5 repetitions of the training speakers (all but 5 in --quick)."""
    if held_out is None:
        train, test = sd.official_split(recordings)
    else:
        train, test = sd.speaker_split(recordings, held_out)
    last = int(recordings.indices.max()) + 1
    validation = train & (recordings.indices >= last - 5)
    train = train & ~validation
    return recordings.subset(train), recordings.subset(validation), recordings.subset(test)


def words(digits):
    return [sd.DIGIT_WORDS[d] for d in digits]


def new_model(args):
    import keras

    from rnn_keras import LogMelFrontEnd, RecurrentBackbone, SpeechRecognizer

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
    return SpeechRecognizer(backbone, sd.DIGIT_WORDS, front_end=front_end, dropout=args.dropout)


def fit_recognizer(args, run_dir, phase, train_audio, train_words, val_audio, val_words, epochs,
                   batch):  # fmt: skip
    """A SpeechRecognizer trained on the clips and chosen on validation: (model, history, s).

    Adam with a cosine decay of the learning rate over `epochs` epochs."""
    from rnn_keras.recipes import optimizer

    model = new_model(args)
    steps = epochs * -(-len(train_audio) // batch)
    model.compile(optimizer=optimizer(args.lr, clipnorm=args.clipnorm, decay_steps=steps))
    x = args.speed_perturbation
    train_ds = model.dataset(
        train_audio, train_words, batch, shuffle=True, seed=args.seed,
        speed=(1 - x, 1 + x) if x else None,
    )  # fmt: skip
    val_ds = model.dataset(val_audio, val_words, 64)
    print(f"\n== {phase}: {len(train_audio)} training clips, {model.count_params():,} parameters")
    history, seconds = common.fit(
        model, args, run_dir, train_ds, val_ds, monitor="val_sequence_accuracy", mode="max",
        phase=f"_{phase}", epochs=epochs,
    )  # fmt: skip
    plot_history(
        history_dict(history), run_dir / f"learning_curve_{phase}.png",
        ["loss", "sequence_accuracy"], f"FSDD, {phase}",
    )  # fmt: skip
    return model, history, seconds


def accuracy(transcripts, digits):
    return float(np.mean([t == w for t, w in zip(transcripts, words(digits), strict=True)]))


def baselines(train, validation, test, group):
    """Test accuracy of the logistic regression and of DTW 1-NN (templates: train +
    validation, as nothing is chosen for it)."""
    started = time.time()
    fit_x, val_x, test_x = (sd.mean_log_mel(list(r.waveforms)) for r in (train, validation, test))
    predict, chosen = sd.logistic_regression(fit_x, train.digits, val_x, validation.digits)
    regression = float((predict(test_x) == test.digits).mean())
    templates = sd.clip_features(list(train.waveforms) + list(validation.waveforms))
    labels = np.concatenate([train.digits, validation.digits])
    print(f"DTW 1-NN over {len(templates)} templates ({group})")
    nearest = sd.nearest_neighbour_dtw(
        templates,
        labels,
        sd.clip_features(list(test.waveforms)),
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return {
        "logistic_regression": regression,
        "logistic_regression_penalty": chosen["penalty"],
        "dtw_1nn": float((nearest == test.digits).mean()),
        "baseline_seconds": time.time() - started,
    }


def once(run_dir, phase, compute, keep_model=False):
    """`compute() -> (model, record)` run once per run folder: a resumed run reloads the
    record (`run_dir/<phase>.json`) and, with `keep_model`, the model (`<phase>.keras`)."""
    import keras

    from rnn_keras.export import save_model
    from rnn_keras.training import saved_step

    done, path = {}, run_dir / f"{phase}.keras"

    def run():
        done["model"], record = compute()
        return record

    def save():
        if keep_model:
            save_model(done["model"], path)

    def load():
        if keep_model:
            done["model"] = keras.saving.load_model(path, compile=False)

    record = saved_step(run_dir, f"result_{phase}", load, run, save)
    return done.get("model"), record


def official(args, recordings, run_dir):
    train, validation, test = splits(recordings)

    def compute():
        model, history, seconds = train_isolated(args, run_dir, "official", train, validation)
        transcripts = model.transcribe(list(test.waveforms))
        counts = sd.plot_confusion(
            words(test.digits), transcripts, run_dir / "confusion_official.png",
            "FSDD official test split (300 clips)",
        )  # fmt: skip
        return model, {
            "test_accuracy": accuracy(transcripts, test.digits),
            "val_accuracy": float(max(history.history["val_sequence_accuracy"])),
            "train_seconds": seconds,
            "epochs": len(history.epoch),
            "confusion": counts.tolist(),
            "history": history_dict(history),
            **baselines(train, validation, test, "official split"),
        }

    return once(run_dir, "official", compute, keep_model=True)


def train_isolated(args, run_dir, phase, train, validation):
    return fit_recognizer(
        args, run_dir, phase, list(train.waveforms), [[w] for w in words(train.digits)],
        list(validation.waveforms), [[w] for w in words(validation.digits)],
        args.epochs if phase == "official" else args.fold_epochs, args.batch_size,
    )  # fmt: skip


def unseen_speakers(args, recordings, run_dir):
    speakers = sorted(set(recordings.speakers.tolist()))
    chosen = speakers if args.folds == "all" else args.folds.split(",")
    folds = {}
    for speaker in chosen:
        train, validation, test = splits(recordings, held_out=speaker)

        def compute(speaker=speaker, train=train, validation=validation, test=test):
            phase = f"unseen_{speaker}"
            model, history, seconds = train_isolated(args, run_dir, phase, train, validation)
            return model, {
                "test_accuracy": accuracy(model.transcribe(list(test.waveforms)), test.digits),
                "val_accuracy": float(max(history.history["val_sequence_accuracy"])),
                "train_seconds": seconds,
                "epochs": len(history.epoch),
                **baselines(train, validation, test, f"{speaker} held out"),
            }

        _, folds[speaker] = once(run_dir, f"unseen_{speaker}", compute)
        print(f"{speaker}: {folds[speaker]['test_accuracy']:.4f}")
    mean = {
        key: float(np.mean([fold[key] for fold in folds.values()]))
        for key in ("test_accuracy", "logistic_regression", "dtw_1nn")
    }
    return {"folds": folds, "mean": mean}


def digit_strings(args, recordings, run_dir):
    seen = recordings.subset(recordings.speakers != args.strings_speaker)
    unseen = recordings.subset(recordings.speakers == args.strings_speaker)
    train, validation, test = splits(seen)
    sets = {
        "train": sd.digit_strings(train, args.train_strings, seed=1),
        "validation": sd.digit_strings(validation, args.eval_strings, seed=2),
        "test_seen": sd.digit_strings(test, args.eval_strings, seed=3),
        "test_unseen": sd.digit_strings(unseen, args.eval_strings, seed=4),
    }
    (train_audio, train_digits), (val_audio, val_digits) = sets["train"], sets["validation"]
    from rnn_keras.speech import error_rates, plot_transcription

    def compute():
        model, history, seconds = fit_recognizer(
            args, run_dir, "strings", train_audio, [words(d) for d in train_digits],
            val_audio, [words(d) for d in val_digits], args.strings_epochs,
            args.strings_batch_size,
        )  # fmt: skip
        result = {
            "train_seconds": seconds,
            "epochs": len(history.epoch),
            "held_out": args.strings_speaker,
            "history": history_dict(history),
        }
        for name in ("validation", "test_seen", "test_unseen"):
            audio, digits = sets[name]
            references = [words(d) for d in digits]
            for decoder, width in (("greedy", 1), ("beam", args.beam_width)):
                transcripts = model.transcribe(audio, width)
                result[f"{name}_{decoder}"] = error_rates(transcripts, references)
        for name in ("test_seen", "test_unseen"):
            plot_transcription(
                model, sets[name][0][0], run_dir / f"transcription_{name}.png",
                f"{name.replace('_', ' ')} string 0, {' '.join(words(sets[name][1][0]))}",
            )  # fmt: skip
        return model, result

    return once(run_dir, "strings", compute, keep_model=True)


def report(results):
    official_row, unseen, strings = results["official"], results["unseen"], results["strings"]
    print(
        f"\n{'isolated digits (accuracy)':<44} {'BiLSTM-CTC':>10} {'log. reg.':>9} {'DTW 1-NN':>9}"
    )
    print(
        f"{'official split (300 test clips)':<44} {official_row['test_accuracy']:10.4f} "
        f"{official_row['logistic_regression']:9.4f} {official_row['dtw_1nn']:9.4f}"
    )
    for speaker, fold in unseen["folds"].items():
        print(
            f"{'unseen speaker: ' + speaker:<44} {fold['test_accuracy']:10.4f} "
            f"{fold['logistic_regression']:9.4f} {fold['dtw_1nn']:9.4f}"
        )
    mean = unseen["mean"]
    print(
        f"{'unseen speakers, mean':<44} {mean['test_accuracy']:10.4f} "
        f"{mean['logistic_regression']:9.4f} {mean['dtw_1nn']:9.4f}"
    )
    for name, value in PUBLISHED.items():
        print(f"{'  published: ' + name:<68} {value:.3f}")
    print(f"\n{'digit strings':<44} {'DER':>8} {'strings':>8}")
    for name in ("validation", "test_seen", "test_unseen"):
        for decoder in ("greedy", "beam"):
            row = strings[f"{name}_{decoder}"]
            print(
                f"{name + ', ' + decoder:<44} {row['token_error_rate']:8.4f} "
                f"{row['sequence_accuracy']:8.4f}"
            )


def main(argv=None):
    args = parse(argv)
    run_dir, export_dir = common.start_run(args, "speech")
    started = time.time()
    recordings = load(args)
    results = {}
    official_model, results["official"] = official(args, recordings, run_dir)
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
