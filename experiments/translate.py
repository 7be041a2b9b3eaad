"""Multi30K German -> English with attention: BLEU against the same model without attention.

    python experiments/translate.py --data-dir ../shared/data/multi30k   # the full run
    python experiments/translate.py --quick --out /tmp/run   # a minutes-long smoke run

Two `rnn_keras.Translator`s on the same data, vocabularies and training budget: Luong
attention with input feeding (`--attention`), and the same network without attention (the
decoder starts from the encoder's final state and sees nothing else of the source). Each
trains through `model.fit` (Adam, the learning rate halved when the validation loss stalls,
early stopping on it, at most `--budget-minutes` of training) on the 29,000 training pairs.
The decoding of each (greedy, or beam search with its width and length penalty) is chosen
on val by BLEU; the test sets are read once, after every choice.

BLEU two ways: lowercased on the Moses-tokenized references of Multi30K's `tok/` files
(the convention of the published figures), and sacreBLEU (13a, cased) on the raw references,
the output detokenized by sacremoses with its first letter capitalised. Also: BLEU by
source length with and without attention (`bleu_by_length.png`), attention heatmaps of test
sentences (`attention.png`), the learning curves. Export: `translate_de_en/`, a SavedModel
whose `translate` maps German strings to English strings (beam search inside), and
`translate_de_en.keras`.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PUBLISHED = {  # test_2016_flickr, German -> English, lowercased tokenized BLEU
    "seq2seq without attention (bentrevett/pytorch-seq2seq 1)": 13.76,
    "GRU + Bahdanau attention, greedy (bentrevett/pytorch-seq2seq 3)": 28.30,
    "Transformer (bentrevett/pytorch-seq2seq 6)": 36.52,
    "OpenNMT-py attention LSTM": 38.4,
}
TARGETS = {"test_2016_flickr_bleu": 32.0, "bleu_over_no_attention": 10.0, "train_minutes": 45}
TEST_SETS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")
DEFAULTS = dict(
    units=384, embedding_dim=256, cell="lstm", attention="general", dropout=0.3, lr=1e-3,
    batch_size=128, epochs=40, patience=4, budget_minutes=45.0, min_count=2,
    beam_sizes="5,10", length_penalties="0.6,1.0", heatmaps=4, seed=1337,
    max_train=None, max_eval=None,
)  # fmt: skip
QUICK = dict(
    units=32, embedding_dim=16, epochs=2, batch_size=32, beam_sizes="3", length_penalties="0.6",
    heatmaps=2, max_train=600, max_eval=40,
)  # fmt: skip


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_run_flags(
        parser,
        "translate",
        "translate_de_en/ and translate_de_en.keras",
        data_help="a copy of Multi30K's data/task1/ (raw/ and tok/; default: download it)",
    )
    common.add_flags(
        parser,
        DEFAULTS,
        helps={
            "attention": "the attention model's score ('additive', 'general', 'dot')",
            "budget_minutes": "training time allowed each model",
            "beam_sizes": "beam widths tried on val (comma-separated; greedy is always tried)",
            "length_penalties": "length-penalty alphas tried on val with each beam width",
            "max_train": "use the first N training pairs (smoke runs)",
            "max_eval": "use the first N pairs of val and of each test set (smoke runs)",
        },
        choices={"cell": ("lstm", "gru", "simple"), "attention": ("additive", "general", "dot")},
    )
    return common.parse_args(parser, argv, QUICK)


def load(args):
    from rnn_keras.datasets.multi30k import MULTI30K_SPLITS, load_multi30k

    data = {}
    for split in MULTI30K_SPLITS:
        german, english = load_multi30k(split, args.data_dir)
        (_, references) = load_multi30k(split, args.data_dir, tokenized=True)
        limit = args.max_train if split == "train" else args.max_eval
        data[split] = {
            "de": german[:limit],
            "en": english[:limit],
            "en_tok": references[:limit],
        }
    return data


def train(args, name, attention, preprocessor, data, run_dir):
    """One translator, trained (or reloaded from a finished step of this run)."""
    import keras

    from rnn_keras.models.translator import Translator
    from rnn_keras.training.fit import saved_step

    keras.utils.set_random_seed(args.seed)
    model = Translator.from_preprocessor(
        preprocessor,
        cell=args.cell,
        units=args.units,
        embedding_dim=args.embedding_dim,
        dropout=args.dropout,
        attention=attention,
        name=name,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.lr, global_clipnorm=1.0))
    train_ds = model.dataset(
        data["train"]["de"], data["train"]["en"], args.batch_size, shuffle=True, seed=args.seed
    )
    val_ds = model.dataset(data["val"]["de"], data["val"]["en"], args.batch_size)
    weights = run_dir / f"{name}.weights.h5"
    result = {}

    def compute():
        halve = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=1e-5)
        history, seconds = common.fit(
            model, args, run_dir, train_ds, val_ds, phase=f"_{name}", callbacks=[halve],
            time_budget=args.budget_minutes * 60,
        )  # fmt: skip
        result["history"] = history
        losses = history.history["val_loss"]
        return {
            "train_seconds": seconds,
            "epochs": len(losses),
            "best_epoch": int(np.argmin(losses)) + 1,
            "best_val_loss": float(np.min(losses)),
            "parameters": model.count_params(),
            "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        }

    record = saved_step(
        run_dir, f"train_{name}", lambda: model.load_weights(weights), compute,
        lambda: model.save_weights(weights),
    )  # fmt: skip
    print(
        f"{name}: {record['parameters']:,} parameters, {record['epochs']} epochs in "
        f"{record['train_seconds'] / 60:.1f} min, best val loss {record['best_val_loss']:.3f} "
        f"(epoch {record['best_epoch']})"
    )
    return model, record


def bleu(hypotheses, split_data):
    """(lowercased tokenized BLEU on the `tok/` references, sacreBLEU on the raw ones)."""
    from rnn_keras.models.translator import bleu_scores

    return bleu_scores(hypotheses, split_data["en"], split_data["en_tok"])


def choose_decoding(args, model, data):
    """Val BLEU of every decoding; the best beam setting by tokenized BLEU."""
    from rnn_keras.models.translator import decoding_grid

    scores = {}
    beam_sizes = [int(s) for s in args.beam_sizes.split(",")]
    alphas = [float(a) for a in args.length_penalties.split(",")]
    for name, size, alpha in decoding_grid(beam_sizes, alphas):
        started = time.time()
        output = model.translate(data["val"]["de"], beam_size=size, length_penalty_alpha=alpha)
        tokenized, raw = bleu(output, data["val"])
        scores[name] = {
            "beam_size": size, "alpha": alpha, "bleu": tokenized, "sacrebleu": raw,
            "seconds": time.time() - started,
        }  # fmt: skip
        print(f"  {model.name} val, {name}: BLEU {tokenized:.2f} ({time.time() - started:.0f} s)")
    beams = {k: v for k, v in scores.items() if v["beam_size"] > 1}
    best = max(beams, key=lambda k: beams[k]["bleu"])
    return scores, best


def main(argv=None):
    import keras

    from rnn_keras.models.translator import (
        bleu_by_length,
        plot_attention_maps,
        plot_bleu_by_length,
    )
    from rnn_keras.models.translator_preprocessor import TranslatorPreprocessor
    from rnn_keras.training.fit import machine_info, plot_history, write_json

    args = parse(argv)
    run_dir, export_dir = common.start_run(args, "translate")
    started = time.time()
    data = load(args)
    preprocessor = TranslatorPreprocessor(min_count=args.min_count)
    preprocessor.adapt(data["train"]["de"], data["train"]["en"])
    print(
        f"vocabularies (words seen at least {args.min_count} times in train): German "
        f"{preprocessor.source_vocabulary_size:,}, English {preprocessor.target_vocabulary_size:,}"
    )
    models, results = {}, {}
    for name, attention in (("attention", args.attention), ("no_attention", None)):
        model, record = train(args, name, attention, preprocessor, data, run_dir)
        plot_history(
            record["history"], run_dir / f"learning_curve_{name}.png", ["loss", "accuracy"],
            f"Multi30K de->en, {name.replace('_', ' ')}",
        )  # fmt: skip
        scores, best = choose_decoding(args, model, data)
        models[name] = model
        results[name] = {"training": record, "val": scores, "chosen_beam": best}

    # The test sets, once, after every choice.
    for name, model in models.items():
        chosen = results[name]["val"][results[name]["chosen_beam"]]
        results[name]["test"] = {}
        for decoding, size, alpha in (
            ("greedy", 1, 0.0),
            ("beam", chosen["beam_size"], chosen["alpha"]),
        ):
            for split in TEST_SETS:
                output = model.translate(
                    data[split]["de"], beam_size=size, length_penalty_alpha=alpha
                )
                tokenized, raw = bleu(output, data[split])
                results[name]["test"][f"{split} {decoding}"] = {"bleu": tokenized, "sacrebleu": raw}
                if split == "test_2016_flickr" and decoding == "beam":
                    results[name]["by_length"] = bleu_by_length(
                        output, data[split]["de"], data[split]["en_tok"]
                    )
                    results[name]["examples"] = list(
                        zip(data[split]["de"][:5], output[:5], strict=True)
                    )

    plot_bleu_by_length(
        {name: results[name]["by_length"] for name in models},
        run_dir / "bleu_by_length.png",
        "test_2016_flickr: BLEU by German source length",
    )
    test = data["test_2016_flickr"]["de"]
    by_length = sorted(range(len(test)), key=lambda i: len(test[i].split()))
    picks = [by_length[int(q * (len(test) - 1))] for q in np.linspace(0.1, 0.9, args.heatmaps)]
    attention_model = models["attention"]
    chosen = results["attention"]["val"][results["attention"]["chosen_beam"]]
    results["heatmaps"] = plot_attention_maps(
        attention_model,
        [test[i] for i in picks],
        run_dir / "attention.png",
        beam_size=chosen["beam_size"],
        length_penalty_alpha=chosen["alpha"],
        title="Attention weights, test_2016_flickr (rows: English words produced)",
    )
    export_kwargs = dict(beam_size=chosen["beam_size"], length_penalty_alpha=chosen["alpha"])
    paths = common.export_task(attention_model, export_dir, "translate_de_en", **export_kwargs)

    train_minutes = sum(results[n]["training"]["train_seconds"] for n in models) / 60
    metrics = {
        "results": results, "published": PUBLISHED, "targets": TARGETS,
        "vocabulary": {
            "de": preprocessor.source_vocabulary_size, "en": preprocessor.target_vocabulary_size,
        },
        "export": {"path": str(paths[0]), **export_kwargs},
        "train_minutes": train_minutes, "wall_minutes": (time.time() - started) / 60,
        "machine": machine_info(), "keras": keras.__version__,
    }  # fmt: skip
    write_json(run_dir / "metrics.json", metrics)
    report(results)
    common.report_run(run_dir, *paths)
    return metrics


def report(results):
    print("\nBLEU (lowercased tokenized / sacreBLEU cased on raw references)")
    for name in ("attention", "no_attention"):
        training = results[name]["training"]
        print(
            f"{name}: {training['parameters']:,} parameters, {training['train_seconds'] / 60:.1f} "
            f"min, chosen beam: {results[name]['chosen_beam']}"
        )
        for key, value in results[name]["test"].items():
            print(f"  {key:28s} {value['bleu']:6.2f} / {value['sacrebleu']:6.2f}")
        lengths = ", ".join(f"{b}: {v[0]:.1f}" for b, v in results[name]["by_length"].items())
        print(f"  by source length (test_2016_flickr, beam): {lengths}")


if __name__ == "__main__":
    main()
