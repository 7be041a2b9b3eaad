"""Binary text classifiers averaged into one model that reads raw text.

The IMDB model (experiments/imdb.py) serves its recurrent student with the
n-gram teacher it was distilled from:

    ensemble = TextEnsemble([student, teacher], member_weights=[w, 1 - w])
    ensemble.predict(["A moving, beautifully shot film."])   # probability positive
    ensemble.export("saved_models/imdb")   # serve(text) and serve_members(text)

with `w` chosen on validation by `mixing_weight`.
"""

import keras
import numpy as np

from rnn_keras.export.saved_model import export_task
from rnn_keras.utils.optional import import_module

__all__ = [
    "TextEnsemble",
    "mixing_curve",
    "mixing_weight",
    "mixture_figures",
    "plot_mixing_curve",
    "recurrent_member",
]

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before the logit


def _logit(p):
    p = keras.ops.clip(p, EPSILON, 1.0 - EPSILON)
    return keras.ops.log(p) - keras.ops.log1p(-p)


@keras.saving.register_keras_serializable(package="rnn_keras")
class TextEnsemble(keras.Model):
    """Raw strings `(batch,)` -> probability positive `(batch, 1)`: binary classifiers
    averaged in logit space,

        p(x) = sigmoid( sum_k w_k * logit(p_k(x)) ),   w_k >= 0,  sum_k w_k = 1,

    where p_k(x) is member k's probability, clipped to [1e-7, 1 - 1e-7]. A
    member is a task with a text preprocessor and one sigmoid output (a
    `SequenceClassifier` with a `TextClassifierPreprocessor`: it reads its
    preprocessor's token ids) or any Keras model that maps strings `(batch,)`
    to probabilities `(batch, 1)` (`rnn_keras.recipes.ngram_classifier`).

    `predict`, `evaluate` and `fit` take raw text (lists, arrays or a
    `tf.data.Dataset` of strings); `member_probabilities(texts)` gives each
    member's own; `export(path)` writes a SavedModel with `serve(text:
    tf.string [None])` -> float32 `[None]` (the ensemble) and
    `serve_members(text)` -> `{member name: float32 [None]}`.

    Args:
        members: the classifiers, with distinct names.
        member_weights: one weight per member, >= 0 and not all 0 (normalised
            to sum to 1); None: equal weights.
        **kwargs: `name`, `trainable`.
    """

    def __init__(self, members, member_weights=None, **kwargs):
        members = [
            keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m for m in members
        ]
        if not members or not all(isinstance(m, keras.Model) for m in members):
            raise ValueError(
                "TextEnsemble: `members` must be a non-empty list of Keras models. "
                f"Received: members={members!r}"
            )
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"TextEnsemble: members need distinct names. Received: {names}")
        weights = np.ones(len(members)) if member_weights is None else np.asarray(member_weights)
        if weights.shape != (len(members),) or (weights < 0).any() or not weights.sum() > 0:
            raise ValueError(
                f"TextEnsemble: `member_weights` must be {len(members)} numbers >= 0, not all 0. "
                f"Received: member_weights={member_weights!r}"
            )
        super().__init__(**kwargs)
        self.members = members
        self.member_weights = [float(w) for w in weights / weights.sum()]
        self.built = True  # the members are built; the ensemble has no weights of its own

    def build_from_config(self, config):
        pass  # built in __init__

    def _member_output(self, member, texts, training=False):
        preprocessor = getattr(member, "preprocessor", None)
        x = texts if preprocessor is None else preprocessor.token_ids(texts)
        return keras.ops.reshape(keras.ops.cast(member(x, training=training), "float32"), (-1,))

    def call(self, inputs, training=False):
        logits = [
            weight * _logit(self._member_output(member, inputs, training))
            for member, weight in zip(self.members, self.member_weights, strict=True)
        ]
        return keras.ops.expand_dims(keras.ops.sigmoid(sum(logits)), -1)

    def compute_output_spec(self, inputs, training=False):
        return keras.KerasTensor((inputs.shape[0], 1), dtype="float32")

    # -- raw text --------------------------------------------------------------------------

    @staticmethod
    def _dataset(x, y=None, batch_size=None):
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            return x
        x = np.asarray(x, dtype=object)
        if x.ndim != 1:
            raise ValueError(
                f"TextEnsemble expects a batch of strings of shape (batch,). Received: shape="
                f"{x.shape}"
            )
        data = x if y is None else (x, np.asarray(y, dtype="float32"))
        return tf.data.Dataset.from_tensor_slices(data).batch(batch_size or 32)

    def predict(self, x, batch_size=None, **kwargs):
        return super().predict(self._dataset(x, batch_size=batch_size), **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        return super().evaluate(self._dataset(x, y, batch_size), **kwargs)

    def member_probabilities(self, texts, batch_size=256):
        """`{member name: NumPy probabilities}` for `texts` (strings)."""
        import tensorflow as tf

        run = tf.function(lambda t: [self._member_output(m, t) for m in self.members])
        outputs = [run(batch) for batch in self._dataset(texts, batch_size=batch_size)]
        return {
            member.name: np.concatenate([batch[k].numpy() for batch in outputs])
            for k, member in enumerate(self.members)
        }

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Writes the serving SavedModel (`serve` and `serve_members`, raw text in)."""
        if format != "tf_saved_model" or kwargs:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        return export_task(self, filepath)

    def serving_endpoints(self):
        """`serve(text: tf.string [None])` -> float32 `[None]`, the ensemble's probability,
        and `serve_members(text)` -> `{member name: float32 [None]}`, each member's own."""
        import tensorflow as tf

        signature = [tf.TensorSpec([None], tf.string, name="text")]

        def serve_members(text):
            return {member.name: self._member_output(member, text) for member in self.members}

        return {
            "serve": (lambda text: self(text, training=False)[:, 0], signature),
            "serve_members": (serve_members, signature),
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
            "member_weights": self.member_weights,
        }


def recurrent_member(model):
    """The recurrent classifier of `model`: its `SequenceClassifier` member if it is a
    `TextEnsemble` (which must have exactly one), else `model` itself."""
    from rnn_keras.models.sequence_classifier import SequenceClassifier

    if not isinstance(model, TextEnsemble):
        return model
    found = [m for m in model.members if isinstance(m, SequenceClassifier)]
    if len(found) != 1:
        raise ValueError(
            "recurrent_member: expected a TextEnsemble with one SequenceClassifier member. "
            f"Received members: {[type(m).__name__ for m in model.members]}"
        )
    return found[0]


def mixing_curve(first, second, labels, step=0.05, weights=None):
    """Accuracy and log loss of `sigmoid(w logit(first) + (1 - w) logit(second))` against the
    0/1 `labels`, for w = 0, step, ..., 1 (or the given `weights`). Returns a list of
    `{weight, accuracy, loss}`."""
    first, second = (
        np.clip(np.asarray(p, "float64"), EPSILON, 1 - EPSILON) for p in (first, second)
    )
    labels = np.asarray(labels)
    if not first.shape == second.shape == labels.shape or first.ndim != 1:
        raise ValueError(
            "mixing_curve: `first`, `second` and `labels` must be vectors of one length. "
            f"Received: shapes {first.shape}, {second.shape}, {labels.shape}"
        )
    logits = [np.log(p) - np.log1p(-p) for p in (first, second)]
    curve = []
    if weights is None:
        weights = np.linspace(0.0, 1.0, round(1 / step) + 1)
    for weight in weights:
        z = weight * logits[0] + (1 - weight) * logits[1]
        loss = np.mean(np.logaddexp(0, z) - labels * z)  # binary cross-entropy on logits
        accuracy = np.mean((z >= 0) == (labels >= 0.5))
        curve.append({"weight": float(weight), "accuracy": float(accuracy), "loss": float(loss)})
    return curve


def mixing_weight(curve):
    """The weight of `mixing_curve`'s most accurate mixture; ties go to the lower log loss."""
    return max(curve, key=lambda point: (point["accuracy"], -point["loss"]))["weight"]


def mixture_figures(first, second, labels, weights):
    """The accuracy and log loss of named mixtures of two members (`mixing_curve` at each
    weight): `weights` maps a name to the first member's weight, 1 for the first alone and 0
    for the second alone. Returns `{"<name>_accuracy", "<name>_loss"}` for every name."""
    figures = {}
    for name, weight in weights.items():
        if not 0.0 <= weight <= 1.0:
            raise ValueError(
                f"mixture_figures: each weight must be in [0, 1]. Received: {name}={weight}"
            )
        (point,) = mixing_curve(first, second, labels, weights=[weight])
        figures |= {f"{name}_accuracy": point["accuracy"], f"{name}_loss": point["loss"]}
    return figures


def plot_mixing_curve(curve, path, first="first", second="second", chosen=None):
    """Accuracy and log loss against the first member's weight, as a PNG at `path`."""
    matplotlib = import_module("matplotlib", feature="plot_mixing_curve")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = [point["weight"] for point in curve]
    fig, accuracy_axis = plt.subplots(figsize=(7, 4), layout="constrained")
    accuracy_axis.plot(weights, [100 * p["accuracy"] for p in curve], "o-", color="C0")
    accuracy_axis.set_ylabel("accuracy (%)", color="C0")
    accuracy_axis.set_xlabel(f"weight of {first} (1 - weight: {second})")
    loss_axis = accuracy_axis.twinx()
    loss_axis.plot(weights, [p["loss"] for p in curve], "s--", color="C1", ms=3)
    loss_axis.set_ylabel("log loss", color="C1")
    if chosen is not None:
        accuracy_axis.axvline(chosen, color="grey", lw=1)
    accuracy_axis.grid(alpha=0.3)
    accuracy_axis.set_title(f"{first} + {second}, mixed in logit space (validation)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
