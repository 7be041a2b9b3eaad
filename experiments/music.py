"""JSB Chorales: polyphonic music against the published NLL table, generated chorales as MIDI.

    python experiments/music.py --data-dir ../shared/data/jsb_chorales   # train both outputs
    python experiments/music.py --quick --out /tmp/run                   # a minute-long smoke run

The split of Boulanger-Lewandowski et al. (2012) at quarter notes: 229 / 76 / 77 chorales.
Two `rnn_keras.PolyphonicModel`s on the same LSTM backbone: independent notes per frame
and the note-by-note (NADE) output. Each trains on train, stops early and is chosen on valid;
test is read once, after training. Figures: test nats per time step (the published
convention: the sum over the 88 keys of -log p(frame t | frames before), averaged over test
frames) and frame-level accuracy (Bay et al. 2009; the most likely frame given the true ones
before: threshold 0.5, key by key for note-by-note). Baselines, measured here on the same split:
per-key training frequencies, and a logistic regression per key on the previous frame.
Generated chorales (seeded) go to the run folder as MIDI and a piano-roll picture, with their
statistics beside the test set's.
Exports: `chorales/`, the note-by-note model's SavedModel (`score`, `generate`; see
`rnn_keras.export`), and `chorales.keras`.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rnn_keras.datasets import chorales  # noqa: E402
from rnn_keras.evaluation import music_baselines  # noqa: E402
from rnn_keras.models.polyphonic_model import FRAME_OUTPUTS  # noqa: E402
from rnn_keras.training import history_dict, machine_info, plot_history, write_json  # noqa: E402

# Test nats per time step on this split.
PUBLISHED = {
    "LSTM (Bai et al. 2018)": 8.45,
    "GRU (Bai et al. 2018)": 8.43,
    "TCN (Bai et al. 2018)": 8.10,
    "Deep Markov Model, bound (Krishnan et al. 2017)": 6.87,
    "RNN-RBM (Boulanger-Lewandowski et al. 2012)": 6.27,
    "RNN-NADE (Boulanger-Lewandowski et al. 2012)": 5.56,
}
TARGETS = {"independent": 8.10, "note_by_note": 6.0, "train_minutes": 30}

# The default configuration (chosen on valid; see docs/music.md). None: all chorales.
# Each output model has its own width and dropout (--independent-units, --note-by-note-units...).
PER_OUTPUT = {
    "independent": dict(units=128, dropout=0.2, recurrent_dropout=0.5),
    "note_by_note": dict(units=128, dropout=0.2, recurrent_dropout=0.3),
}
DEFAULTS = dict(
    cell="lstm", layers=1, hidden_units=128, lr=3e-3, clipnorm=1.0, batch_size=8, epochs=300,
    patience=15, transpose=0, seed=1337, max_chorales=None, samples=4, sample_steps=64,
    temperature=1.0,
    **{f"{name}_{key}": value for name, values in PER_OUTPUT.items()
       for key, value in values.items()},
)  # fmt: skip
# --quick: the same code path on a dozen chorales per split, for tests and smoke runs.
QUICK = dict(
    independent_units=16, note_by_note_units=16, hidden_units=8, epochs=2, max_chorales=12,
    samples=2, sample_steps=16,
)  # fmt: skip
HELP = {
    **{f"{name}_dropout": "on the frames and before the output" for name in PER_OUTPUT},
    **{f"{name}_recurrent_dropout": "the cells' dropout on the state" for name in PER_OUTPUT},
    "hidden_units": "the note-by-note output's hidden width",
    "transpose": "shift each training chorale by up to this many semitones (0: off)",
    "max_chorales": "per split (default: all)", "patience": "early stopping on valid",
    "samples": "generated chorales", "sample_steps": "time steps per generated chorale",
}  # fmt: skip


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_run_flags(
        parser,
        "music",
        "the note-by-note model's SavedModel and .keras",
        data_help="folder with jsb-chorales-quarter.json (downloaded there when missing; "
        "default: Keras's cache)",
    )
    common.add_flags(parser, DEFAULTS, HELP, {"cell": ["simple", "lstm", "gru"]})
    return common.parse_args(parser, argv, QUICK)


def load(args):
    data = chorales.load_chorales(args.data_dir)
    if args.max_chorales:
        data = {split: rolls[: args.max_chorales] for split, rolls in data.items()}
    return data


def nats_per_step(scores, rolls):
    """Nats per time step over all frames of `rolls` from each roll's nats per step."""
    lengths = np.array([len(roll) for roll in rolls])
    return float(np.sum(np.asarray(scores) * lengths) / lengths.sum())


def baselines(data):
    """Valid and test nats per step and test frame accuracy of the two baselines."""
    frequencies = music_baselines.key_frequencies(data["train"])
    _, regression = music_baselines.previous_frame_regression(data["train"], data["valid"])
    results = {}
    for name, probabilities in (
        ("key_frequencies", lambda rolls: [np.broadcast_to(frequencies, r.shape) for r in rolls]),
        ("previous_frame_regression", regression),
    ):
        test_p = probabilities(data["test"])
        results[name] = {
            "valid_nats": music_baselines.independent_nll(
                data["valid"], probabilities(data["valid"])
            ),
            "test_nats": music_baselines.independent_nll(data["test"], test_p),
            "test_frame_accuracy": music_baselines.frame_accuracy(
                data["test"], [np.asarray(p) > 0.5 for p in test_p]
            ),
        }
    return results


def train(args, data, frame_output, run_dir):
    """One PolyphonicModel, trained on train and stopped early on valid: (model, history, s)."""
    import keras

    from rnn_keras.models.backbone import RecurrentBackbone
    from rnn_keras.models.polyphonic_model import PolyphonicModel

    keras.utils.set_random_seed(args.seed)
    own = {key: getattr(args, f"{frame_output}_{key}") for key in PER_OUTPUT[frame_output]}
    backbone = RecurrentBackbone(
        args.cell, own["units"], num_layers=args.layers, input_dim=chorales.NUM_KEYS,
        dropout=own["dropout"], recurrent_dropout=own["recurrent_dropout"],
    )  # fmt: skip
    model = PolyphonicModel(
        backbone, frame_output=frame_output, hidden_units=args.hidden_units, dropout=own["dropout"]
    )
    model.compile(optimizer=keras.optimizers.Adam(args.lr, global_clipnorm=args.clipnorm))
    train_batches = chorales.roll_batches(
        data["train"], args.batch_size, shuffle=True, transpose=args.transpose, seed=args.seed
    )
    valid_batches = chorales.roll_batches(data["valid"], 32)
    print(f"\n== {frame_output}: {model.count_params():,} parameters")
    history, seconds = common.fit(
        model, args, run_dir, train_batches, valid_batches,
        monitor="val_nats_per_frame", phase=f"_{frame_output}",
    )  # fmt: skip
    return model, history, seconds


def evaluate(model, data, seconds):
    """Valid and test nats per step and test frame accuracy (test read here, once)."""
    predicted = [model.predicted_frames(roll[None]).numpy()[0] for roll in data["test"]]
    return {
        "parameters": int(model.count_params()),
        "train_seconds": seconds,
        "valid_nats": nats_per_step(model.score(data["valid"]), data["valid"]),
        "test_nats": nats_per_step(model.score(data["test"]), data["test"]),
        "test_frame_accuracy": music_baselines.frame_accuracy(data["test"], predicted),
    }


def write_samples(models, data, args, run_dir):
    """Seeded chorales from each model as MIDI, one picture, and statistics beside the test
    set's; returns the statistics."""
    folder = run_dir / "samples"
    folder.mkdir(exist_ok=True)
    statistics = {"test": music_baselines.roll_statistics(data["test"])}
    pictures, titles = [data["test"][0][: args.sample_steps]], ["test chorale 0 (Bach)"]
    for name, model in models.items():
        rolls = [
            model.generate(args.sample_steps, args.temperature, seed=seed)
            for seed in range(args.samples)
        ]
        for seed, roll in enumerate(rolls):
            chorales.write_midi(roll, folder / f"{name}_seed{seed}.mid")
        statistics[name] = music_baselines.roll_statistics(rolls)
        pictures += rolls[:2]
        titles += [f"{name}, seed {seed}, temperature {args.temperature}" for seed in range(2)]
    chorales.write_midi(data["test"][0], folder / "test_chorale0.mid")
    chorales.plot_rolls(pictures[: len(titles)], run_dir / "chorales.png", titles)
    write_json(run_dir / "sample_statistics.json", statistics)
    return statistics


def report(results, statistics):
    """The results table and the sample statistics, printed."""
    print(f"\n{'model':<60} {'valid':>7} {'test':>7} {'frame acc':>9} {'minutes':>8}")
    for name, row in results.items():
        minutes = f"{row['train_seconds'] / 60:8.1f}" if "train_seconds" in row else f"{'':>8}"
        print(
            f"{name:<60} {row['valid_nats']:7.2f} {row['test_nats']:7.2f} "
            f"{row['test_frame_accuracy']:9.3f} {minutes}"
        )
    for name, nats in PUBLISHED.items():
        print(f"{'  published: ' + name:<60} {'':>7} {nats:7.2f}")
    header = f"{'notes/frame':>11} {'bass mean':>9} {'soprano mean':>12} {'repeats':>8}"
    print(f"\n{'samples':<16} {header}")
    for name, row in statistics.items():
        print(
            f"{name:<16} {row['notes_per_frame']:11.2f} {row['lowest_pitch']['mean']:9.1f} "
            f"{row['highest_pitch']['mean']:12.1f} {row['repeated_frames']:8.2f}"
        )


def main(argv=None):
    args = parse(argv)
    run_dir, export_dir = common.start_run(args, "music")
    started = time.time()
    data = load(args)
    results = baselines(data)
    models, histories = {}, {}
    for frame_output in FRAME_OUTPUTS:
        model, history, seconds = train(args, data, frame_output, run_dir)
        models[frame_output], histories[frame_output] = model, history_dict(history)
        results[frame_output] = evaluate(model, data, seconds)
        plot_history(
            histories[frame_output], run_dir / f"learning_curve_{frame_output}.png",
            ["nats_per_frame"], f"JSB Chorales, {frame_output} output",
        )  # fmt: skip
    statistics = write_samples(models, data, args, run_dir)
    exports = common.export_task(models["note_by_note"], export_dir, "chorales")
    train_seconds = sum(results[name]["train_seconds"] for name in FRAME_OUTPUTS)
    metrics = {
        "results": results, "published": PUBLISHED, "targets": TARGETS,
        "train_minutes": train_seconds / 60, "wall_minutes": (time.time() - started) / 60,
        "sample_statistics": statistics, "history": histories, "machine": machine_info(),
    }  # fmt: skip
    write_json(run_dir / "metrics.json", metrics)
    report(results, statistics)
    minutes = train_seconds / 60
    print(f"\ntraining: {minutes:.1f} minutes (target at most {TARGETS['train_minutes']})")
    common.report_run(run_dir, *exports)
    return metrics


if __name__ == "__main__":
    main()
