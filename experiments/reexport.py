"""Re-exports the committed `.keras` models of rnn_keras 0.1 with today's task models.

    mkdir -p /tmp/v01 && for f in imdb char_rnn; do
        git show 0ee5201:saved_models/$f.keras > /tmp/v01/$f.keras; done
    python experiments/reexport.py --old-models /tmp/v01 \
        --data-dir ../shared/data/tensorflow_datasets

rnn_keras 0.1 saved `saved_models/imdb.keras` and `saved_models/char_rnn.keras`
with its old model classes (`SequenceClassifier` and `CharRNN` with flat
configs), which no longer exist. This command reads their trained weights from
the files as data, in the order the old models held them, puts them into the
same models built as `RecurrentBackbone` + task (same layers, same maths), and
checks that the result computes what the committed SavedModels compute:

* IMDB: the probabilities of the first `--reviews` test reviews equal the
  committed `imdb/` SavedModel's (largest difference printed), except for
  reviews that hold a Unicode line break: the re-exported model's standardizer
  turns those into spaces (the old one kept them inside tokens, and such a
  token cannot be stored in a .keras file, which is why the old `imdb.keras`
  did not load); the accuracy of both is printed;
* char: the validation split's nats/char, through `export_text_generator` on
  the re-exported model, equals the committed `char_rnn/` SavedModel's.

The optimizer state of the old files is not carried over (a further `fit`
starts Adam afresh). The SavedModels are left as they are: they need no rnn_keras.
"""

import argparse
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from imdb_data import load_split  # noqa: E402

common.quiet_tensorflow()

# Where the old files kept each layer's weights, in the order the new models hold them.
IMDB_LAYERS = [
    "layers/sequence_classifier/layers/embedding",
    "layers/sequence_classifier/layers/bidirectional/forward_layer/cell",
    "layers/sequence_classifier/layers/bidirectional/backward_layer/cell",
    "layers/sequence_classifier/layers/dense",
]
CHAR_LAYERS = ["layers/embedding", "layers/lstm/cell", "layers/lstm_1/cell", "layers/dense"]


def old_file(path):
    """(config dict, {layer path: [weights in order]}, archive) of a .keras file."""
    import h5py

    archive = zipfile.ZipFile(path)
    config = json.loads(archive.read("config.json"))
    weights = {}
    with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
        groups = []
        h5.visititems(
            lambda name, obj: groups.append((name, obj)) if name.endswith("/vars") else None
        )
        for name, group in groups:
            weights[name[: -len("/vars")]] = [group[str(i)][()] for i in range(len(group))]
    return config, weights, archive


def has_line_break(text):
    return any(character in text for character in "\x85\u2028\u2029")


def backbone_arguments(old):
    """`RecurrentBackbone` arguments from an rnn_keras 0.1 model's flat config."""
    keys = ("cell", "units", "num_layers", "vocabulary_size", "embedding_dim", "dropout")
    return {
        **{key: old[key] for key in keys},
        "bidirectional": old.get("bidirectional", False),
        "recurrent_dropout": old.get("recurrent_dropout", 0.0),
    }


def in_order(weights, layers):
    return [w for layer in layers for w in weights[layer]]


def reexport_imdb(old_path, path, data_dir, reviews):
    import imdb
    import keras
    import numpy as np
    import tensorflow as tf

    import rnn_keras.text

    config, weights, archive = old_file(old_path)
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    old = layers["sentiment_classifier"]["config"]
    vectorizer_config = dict(layers["vectorizer"]["config"])
    vocabulary = archive.read("assets/layers/text_vectorization/vocabulary.txt").decode()
    vectorizer_config.pop("vocabulary", None)
    standardize = vectorizer_config["standardize"]["config"]
    vectorizer_config["standardize"] = rnn_keras.text.ReviewStandardizer(**standardize)
    vectorizer = keras.layers.TextVectorization(**vectorizer_config)
    # Tokens that hold a Unicode line break (the old standardizer let NEL through) can no
    # longer occur, and a .keras file cannot store them: unique placeholders keep the ids.
    tokens = vocabulary.split("\n")[: old["vocabulary_size"]]
    tokens = [f"[unreachable {i}]" if has_line_break(t) else t for i, t in enumerate(tokens)]
    vectorizer.set_vocabulary(tokens)
    backbone = rnn_keras.RecurrentBackbone(**backbone_arguments(old))
    classifier = rnn_keras.SequenceClassifier(
        backbone, 1, old["pooling"], old["dropout"], "sigmoid", name=old["name"]
    )
    classifier.set_weights(in_order(weights, IMDB_LAYERS))
    model = imdb.text_model(vectorizer, classifier)

    texts, labels = load_split(data_dir, "test", reviews)
    committed = tf.saved_model.load(str(Path(path).with_suffix("")))  # owns the variables
    expected = np.concatenate(
        [
            committed.serve(tf.constant(texts[i : i + 250])).numpy()
            for i in range(0, len(texts), 250)
        ]
    )
    got = model.predict(tf.constant(texts), batch_size=64, verbose=0).reshape(-1)
    plain = np.array([not has_line_break(t.decode("utf-8", "replace")) for t in texts])
    difference = float(np.abs(got - expected)[plain].max())
    accuracy = [float(np.mean((p > 0.5) == labels)) for p in (got, expected)]
    print(
        f"imdb: on {len(texts)} test reviews, accuracy {accuracy[0]:.4%} (committed "
        f"SavedModel: {accuracy[1]:.4%}); on the {int(plain.sum())} without a Unicode line "
        f"break, the largest difference from the SavedModel is {difference:.2e}"
    )
    if difference > 1e-4:
        raise SystemExit("imdb: the re-exported model does not compute what the SavedModel does")
    common.atomic_replace(lambda tmp: model.save(tmp), path)
    keras.saving.load_model(path)  # loads


def reexport_char(old_path, path, data_dir):
    import char_text
    import keras
    import tensorflow as tf

    import rnn_keras

    config, weights, _ = old_file(old_path)
    old = config["config"]
    texts = char_text.load_splits(data_dir)
    lookup = char_text.make_lookup(texts["train"])
    backbone = rnn_keras.RecurrentBackbone(
        **backbone_arguments(old),
        mask_zero=False,  # the old CharRNN's embedding had no padding id
        stateful=old["stateful"],
        batch_size=old["batch_size"],
    )
    model = rnn_keras.LanguageModel(backbone, dropout=old["dropout"], name=old["name"])
    model.set_weights(in_order(weights, CHAR_LAYERS))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    text = tf.constant([texts["validation"]])
    committed_model = tf.saved_model.load(str(Path(path).with_suffix("")))
    committed = committed_model.score(text)
    with tempfile.TemporaryDirectory() as tmp:
        rnn_keras.export.export_text_generator(model, lookup, tmp)
        exported = tf.saved_model.load(tmp)
        ours = exported.score(text)
    nats = [float(r["nats"][0]) / int(r["chars"][0]) for r in (committed, ours)]
    print(f"char_rnn: validation {nats[1]:.6f} nats/char (committed SavedModel: {nats[0]:.6f})")
    if abs(nats[1] - nats[0]) > 1e-4:
        raise SystemExit("char_rnn: the re-exported model does not score as the SavedModel does")
    common.atomic_replace(lambda tmp: model.save(tmp), path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tensorflow-datasets data dir")
    parser.add_argument(
        "--old-models", required=True, help="folder with rnn_keras 0.1's imdb.keras, char_rnn.keras"
    )
    parser.add_argument(
        "--models",
        default=str(common.REPO_ROOT / "saved_models"),
        help="folder with the committed SavedModels, where the .keras files are written",
    )
    parser.add_argument("--reviews", type=int, default=2000, help="test reviews compared")
    args = parser.parse_args(argv)
    old, models = Path(args.old_models), Path(args.models)
    reexport_imdb(old / "imdb.keras", models / "imdb.keras", args.data_dir, args.reviews)
    reexport_char(old / "char_rnn.keras", models / "char_rnn.keras", args.data_dir)


if __name__ == "__main__":
    main()
