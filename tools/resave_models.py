"""Re-saves the committed `.keras` models of rnn_keras 0.2 as 0.3 tasks that own their
preprocessing, without optimizer state, and checks each against its committed SavedModel.

    python tools/resave_models.py --data-dir ../shared/data/tensorflow_datasets \
        --pm25-dir ../shared/data/beijing_pm25

rnn_keras 0.2 saved `imdb.keras` and `pm25.keras` as functional models with the
preprocessing layers in front of a task, and `char_rnn.keras` as a task on ids
(its character lookup lived only in the SavedModel). This moves the same layers
and weights into `SequenceClassifier(preprocessor=TextClassifierPreprocessor)`,
`LanguageModel(preprocessor=LanguageModelPreprocessor)` and
`SequenceRegressor(preprocessor=FeatureWindowPreprocessor)`, re-measures each
model's reported figures through the new file (IMDB test accuracy, char
validation nats/char, PM2.5 mean MAE on 2013 and 2014), prints the largest
difference from the committed SavedModel's outputs, and refuses to write a
model that differs by more than 1e-4. The SavedModels are left as they are.
(rnn_keras 0.1's files were moved to 0.2 by this file's predecessor,
`experiments/reexport.py` at commit 00865bf.)
"""

import argparse
import math
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rnn_keras  # noqa: E402
from rnn_keras import forecasting  # noqa: E402
from rnn_keras.export import save_model  # noqa: E402

TOLERANCE = 1e-4


def layer_of_type(model, layer_type):
    (layer,) = [layer for layer in model.layers if isinstance(layer, layer_type)]
    return layer


def check(name, difference, figure):
    print(f"{name}: {figure}; largest difference from the committed SavedModel {difference:.2e}")
    if difference > TOLERANCE:
        raise SystemExit(f"{name}: the re-saved model does not compute what the SavedModel does")


def resave_imdb(models, data_dir):
    from rnn_keras.imdb_reviews import load_split

    old = keras.saving.load_model(models / "imdb.keras")
    old_classifier = layer_of_type(old, rnn_keras.SequenceClassifier)
    preprocessor = rnn_keras.TextClassifierPreprocessor(
        tokenizer=layer_of_type(old, keras.layers.TextVectorization), name="preprocessor"
    )
    classifier = rnn_keras.SequenceClassifier(
        old_classifier.backbone,
        num_classes=1,
        pooling=old_classifier.pooling,
        dropout=old_classifier.dropout,
        activation="sigmoid",
        preprocessor=preprocessor,
        name="imdb_sentiment",
    )
    classifier.output_dense.set_weights(old_classifier.output_dense.get_weights())
    texts, labels = load_split(data_dir, "test")
    served = tf.saved_model.load(str(models / "imdb"))
    expected = np.concatenate(
        [served.serve(texts[i : i + 500]).numpy() for i in range(0, 25000, 500)]
    )
    got = classifier.predict(texts, batch_size=64, verbose=0)[:, 0]
    accuracy = float(np.mean((got > 0.5) == labels))
    check("imdb", float(np.abs(got - expected).max()), f"test accuracy {accuracy:.4%}")
    save_model(classifier, models / "imdb.keras")


def resave_char(models, data_dir):
    from char_text import load_splits

    old = keras.saving.load_model(models / "char_rnn.keras")
    served = tf.saved_model.load(str(models / "char_rnn"))
    vocabulary = [token.decode() for token in served.vocabulary().numpy()]
    preprocessor = rnn_keras.LanguageModelPreprocessor(
        vocabulary=vocabulary[1:], split="characters", start_token="\n", name="preprocessor"
    )
    model = rnn_keras.LanguageModel(
        old.backbone, dropout=old.dropout, preprocessor=preprocessor, name="char_rnn"
    )
    model.next_token_head.set_weights(old.next_token_head.get_weights())
    assert model.preprocessor.get_vocabulary() == vocabulary
    text = load_splits(data_dir)["validation"]
    committed = served.score(tf.constant([text]))
    ids, lengths = preprocessor.tokenize(tf.constant([text]))
    nats, scored = model.score_ids(ids, lengths)
    figures = [
        float(r[0]) / int(c[0])
        for r, c in ((committed["nats"], committed["chars"]), (nats, scored))
    ]
    greedy = served.generate(tf.constant(["ROMEO:"]), tf.constant(200), tf.constant(0.0))
    same_text = (
        model.generate("ROMEO:", max_length=206, temperature=0.0) == greedy.numpy()[0].decode()
    )
    per_token = model.score(text)
    check(
        "char_rnn",
        abs(figures[1] - figures[0]) + (0.0 if same_text else math.inf),
        f"validation {figures[1]:.6f} nats/char (tokens 2..n, as the SavedModel's score), "
        f"{per_token:.6f} read after the start token (LanguageModel.score); greedy text equal",
    )
    save_model(model, models / "char_rnn.keras")


def resave_pm25(models, pm25_dir):
    import timeseries

    old = keras.saving.load_model(models / "pm25.keras")
    preprocessor = rnn_keras.FeatureWindowPreprocessor(
        numeric=list(timeseries.NUMERIC_COLUMNS),
        periodic={"hour": 24, "month": [12, 1]},
        categorical={"wind_direction": timeseries.WIND_DIRECTIONS},
        unused={"day": "int32"},
        name="preprocessor",
    )
    preprocessor.normalization.set_weights(
        layer_of_type(old, keras.layers.Normalization).get_weights()
    )
    preprocessor.normalization.finalize_state()
    old_regressor = layer_of_type(old, rnn_keras.SequenceRegressor)
    rescaling = layer_of_type(old, keras.layers.Rescaling)
    regressor = rnn_keras.SequenceRegressor(
        old_regressor.backbone,
        num_outputs=old_regressor.num_outputs,
        pooling=old_regressor.pooling,
        output_scale=rescaling.scale,
        output_offset=rescaling.offset,
        preprocessor=preprocessor,
        name="pm25_forecaster",
    )
    regressor.output_dense.set_weights(old_regressor.output_dense.get_weights())
    table = timeseries.read_table(data_dir=pm25_dir)
    served = tf.saved_model.load(str(models / "pm25"))
    figures, difference = [], 0.0
    history, horizon = timeseries.HISTORY, timeseries.HORIZON
    for split in ("validation", "test"):
        years = timeseries.SPLIT_YEARS[split]
        starts = forecasting.window_starts(table["year"], years, history, horizon)
        inputs, targets = forecasting.make_windows(
            table, starts, history, horizon, timeseries.INPUTS, "pm25"
        )
        got = regressor.predict(inputs, batch_size=512, verbose=0)
        expected = served.serve(**{k: tf.constant(v) for k, v in inputs.items()}).numpy()
        difference = max(difference, float(np.abs(got - expected).max()))
        mae = forecasting.horizon_errors(got, targets)["mean_mae"]
        figures.append(f"{split} mean MAE {mae:.2f}")
    check("pm25", difference, ", ".join(figures))
    save_model(regressor, models / "pm25.keras")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tensorflow-datasets data dir")
    parser.add_argument("--pm25-dir", help="the folder that holds the Beijing PM2.5 CSV")
    parser.add_argument("--models", default=str(REPO_ROOT / "saved_models"))
    parser.add_argument("--only", choices=["imdb", "char_rnn", "pm25"])
    args = parser.parse_args(argv)
    models = Path(args.models)
    steps = {
        "imdb": lambda: resave_imdb(models, args.data_dir),
        "char_rnn": lambda: resave_char(models, args.data_dir),
        "pm25": lambda: resave_pm25(models, args.pm25_dir),
    }
    for name, step in steps.items():
        if args.only in (None, name):
            step()


if __name__ == "__main__":
    main()
