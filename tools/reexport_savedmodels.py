"""Re-exports each committed SavedModel from its committed `.keras` file with rnn_keras 1.0's
export (each variable saved once), after checking that the new SavedModel answers every
endpoint exactly as the committed one does.

    python tools/reexport_savedmodels.py [--models saved_models] [--only imdb char_rnn]

rnn_keras 0.3's SavedModels held each weight twice (Keras's `ExportArchive.track` saved the
Keras variables beside the TensorFlow variables the endpoints read). The `.keras` files are
the same trained models (each experiment writes both from one object). A model whose new
answers differ from the old SavedModel's by more than `TOLERANCE` is not replaced.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import rnn_keras  # noqa: F401 (registers the classes the .keras files name)
from rnn_keras.training import atomic_replace

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
TEXTS = [
    "A moving, beautifully shot film with a wonderful cast.",
    "Dull. I walked out after twenty minutes.",
    "",
    "Ein Hund läuft im Schnee.",
    "Zwei Männer spielen Fußball auf einer Wiese.",
]


def translate_options():
    import json

    metrics = json.loads((REPO_ROOT / "experiments/results/translate/metrics.json").read_text())
    chosen = metrics["results"]["attention"]["val"][metrics["results"]["attention"]["chosen_beam"]]
    return {"beam_size": chosen["beam_size"], "length_penalty_alpha": chosen["alpha"]}


def probes(name, model):
    """`{endpoint: [kwargs, ...]}`: the calls compared between the old and new SavedModel."""
    rng = np.random.default_rng(0)
    text = tf.constant(TEXTS)
    if name == "imdb":
        return {"serve": [{"text": text}], "serve_members": [{"text": text}]}
    if name == "char_rnn":
        state = tf.zeros([2, model.state_size])
        return {
            "score": [{"text": text}],
            "generate": [{"prompt": tf.constant(["ROMEO:", ""]), "num_chars": 40,
                          "temperature": tf.constant(0.0)}],
            "step": [{"ids": tf.constant([5, 7]), "state": state}],
            "initial_state": [{"batch_size": tf.constant(2)}],
            "vocabulary": [{}],
        }  # fmt: skip
    if name == "pm25":
        preprocessor = model.preprocessor
        columns = {}
        for column, dtype in preprocessor.input_dtypes.items():
            shape = (3, preprocessor.sequence_length or 72)
            if dtype == "string":
                values = list(preprocessor.categorical.get(column, ["x"]))
                columns[column] = tf.constant(rng.choice(values, shape))
            elif dtype == "int32":
                columns[column] = tf.constant(rng.integers(0, 12, shape), tf.int32)
            else:
                columns[column] = tf.constant(rng.normal(50, 20, shape), tf.float32)
        return {"serve": [columns]}
    if name.startswith("speech"):
        waveforms = rng.normal(0, 0.1, (2, 8000)).astype("float32")
        return {"transcribe": [{"waveforms": waveforms, "lengths": tf.constant([8000, 4000])}]}
    if name == "chorales":
        rolls = (rng.random((2, 16, 88)) < 0.05).astype("float32")
        return {
            "score": [{"rolls": rolls}],
            "generate": [{"num_steps": 12, "temperature": tf.constant(0.0), "seed": 3}],
        }
    if name == "translate_de_en":
        return {"translate": [{"text": text}]}
    raise ValueError(f"no probes for {name!r}")


def largest_difference(old, new):
    if isinstance(old, dict):
        return max(largest_difference(old[k], new[k]) for k in old)
    old, new = np.asarray(old), np.asarray(new)
    if old.dtype.kind in "OSU":
        return 0.0 if np.array_equal(old, new) else float("inf")
    if old.shape != new.shape:
        return float("inf")
    return float(np.nanmax(np.abs(old - new), initial=0.0))


def variables_bytes(path):
    return sum(f.stat().st_size for f in (Path(path) / "variables").glob("variables.data-*"))


def reexport(folder, name):
    old_path, keras_path = folder / name, folder / f"{name}.keras"
    model = keras.saving.load_model(keras_path, compile=False)
    options = translate_options() if name == "translate_de_en" else {}
    with tempfile.TemporaryDirectory() as tmp:
        new_path = Path(tmp) / name
        model.export(new_path, **options)
        old, new = tf.saved_model.load(str(old_path)), tf.saved_model.load(str(new_path))
        worst = 0.0
        for endpoint, calls in probes(name, model).items():
            for kwargs in calls:
                difference = largest_difference(
                    getattr(old, endpoint)(**kwargs), getattr(new, endpoint)(**kwargs)
                )
                print(f"  {endpoint}: largest difference {difference:.3g}")
                worst = max(worst, difference)
        weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
        sizes = (variables_bytes(old_path), variables_bytes(new_path))
        print(
            f"  variables: {sizes[0] / 1e6:.1f} MB -> {sizes[1] / 1e6:.1f} MB "
            f"({sizes[1] / weights:.2f}x the {weights / 1e6:.1f} MB of weights)"
        )
        if worst > TOLERANCE:
            print(f"  NOT replaced: answers differ by {worst:.3g} > {TOLERANCE}")
            return False
        atomic_replace(lambda target: shutil.copytree(new_path, target), old_path)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=str(REPO_ROOT / "saved_models"))
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    folder = Path(args.models)
    names = args.only or sorted(
        p.stem for p in folder.glob("*.keras") if (folder / p.stem).is_dir()
    )
    replaced = []
    for name in names:
        print(name)
        if reexport(folder, name):
            replaced.append(name)
    print("replaced:", " ".join(replaced) or "none")


if __name__ == "__main__":
    main()
