"""Text standardization for `keras.layers.TextVectorization`, safe for raw user text.

Lives in the library (not in an experiment) so that a `.keras` file holding a
`TextVectorization` with this standardizer loads wherever `rnn_keras` is
importable; a SavedModel needs no Python at all, since the TensorFlow string ops
are traced into its graph.
"""

import keras
import tensorflow as tf

__all__ = ["FeatureWeights", "ReviewStandardizer"]

# Keras's default punctuation set (TextVectorization's DEFAULT_STRIP_REGEX) minus the
# apostrophe, which is removed rather than replaced, so "don't" stays one token.
_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~]'
# Unicode line breaks that are not ASCII whitespace: NEL (U+0085, which is how text once
# encoded as Windows-1252 carries its "..." after a wrong decode; 681 IMDB reviews have it),
# and the line and paragraph separators. TextVectorization's whitespace split keeps them
# inside tokens, and a .keras file stores the vocabulary one token per line, read back by a
# split that breaks at them: such a token would make the saved model unloadable.
_LINE_BREAKS = r"[\x{85}\x{2028}\x{2029}]"


@keras.saving.register_keras_serializable(package="rnn_keras")
class ReviewStandardizer:
    """TextVectorization `standardize`: cap, repair, lowercase, strip tags and punctuation.

    1. Keep at most `max_chars` bytes of each text, so a huge input costs no more
       than a normal one (None keeps everything).
    2. Repair invalid UTF-8 (a multi-byte character cut by the cap, or bad bytes
       from the user) with U+FFFD instead of failing.
    3. Lowercase (Unicode-aware), replace Unicode line breaks (NEL, U+2028,
       U+2029) and HTML tags such as IMDB's `<br />` with a space, drop
       apostrophes, and replace other ASCII punctuation with a space.

    Args:
        max_chars: the cap in bytes, or None.
    """

    def __init__(self, max_chars=None):
        if max_chars is not None and (not isinstance(max_chars, int) or max_chars <= 0):
            raise ValueError(
                f"ReviewStandardizer: `max_chars` must be a positive integer or None. "
                f"Received: max_chars={max_chars!r}"
            )
        self.max_chars = max_chars

    def __call__(self, text):
        if self.max_chars is not None:
            text = tf.strings.substr(text, 0, self.max_chars, unit="BYTE")
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replace_control_characters=True
        )
        text = tf.strings.lower(text, encoding="utf-8")
        text = tf.strings.regex_replace(text, _LINE_BREAKS, " ")
        text = tf.strings.regex_replace(text, r"<[^>]*>", " ")
        text = tf.strings.regex_replace(text, "'", "")
        return tf.strings.regex_replace(text, _PUNCTUATION, " ")

    def get_config(self):
        return {"max_chars": self.max_chars}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnn_keras")
class FeatureWeights(keras.layers.Layer):
    """Multiplies each of the last axis's `size` features by a fixed weight: y_i = r_i x_i.

    The weights are a non-trainable variable, so they are saved with the model's
    weights (not in its config) and a `.keras` file or SavedModel holds them. An
    NBSVM model (`rnn_keras.recipes.ngram_classifier`) weights each n-gram's
    presence by its naive-Bayes log-count ratio this way.

    Args:
        size: the number of features.
        weights: their initial values, `(size,)` (None: ones; a loaded model
            gets them from its weights file).
        **kwargs: `name`, `dtype`.
    """

    def __init__(self, size, weights=None, **kwargs):
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ValueError(f"FeatureWeights: `size` must be >= 1. Received: size={size}")
        self.size = int(size)
        if weights is not None and tuple(getattr(weights, "shape", ())) != (self.size,):
            raise ValueError(
                f"FeatureWeights: `weights` must have shape ({self.size},). "
                f"Received: shape={getattr(weights, 'shape', None)}"
            )
        self._initial = weights

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.size:
            raise ValueError(
                f"FeatureWeights: expected inputs with {self.size} features on the last axis. "
                f"Received: input_shape={input_shape}"
            )
        self.feature_weights = self.add_weight(
            shape=(self.size,), initializer="ones", trainable=False, name="feature_weights"
        )
        if self._initial is not None:
            self.feature_weights.assign(keras.ops.convert_to_tensor(self._initial, self.dtype))

    def call(self, inputs):  # integer features (TextVectorization's counts) become floats
        return keras.ops.cast(inputs, self.compute_dtype) * self.feature_weights

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size}
