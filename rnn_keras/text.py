"""Text standardization for `keras.layers.TextVectorization`, safe for raw user text.

Lives in the library (not in an experiment) so that a `.keras` file holding a
`TextVectorization` with this standardizer loads wherever `rnn_keras` is
importable; a SavedModel needs no Python at all, since the TensorFlow string ops
are traced into its graph.
"""

import keras
import tensorflow as tf

__all__ = ["FeatureWeights", "ReviewStandardizer", "length_bucketed_batches", "score_texts"]

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


def length_bucketed_batches(
    vectorizer, texts, labels, batch_size, bucket_width=50, shuffle_seed=None
):
    """tf.data of `(int32 ids (batch, time), label)` batches, grouped by review length.

    `vectorizer` is a `TextVectorization` with `output_sequence_length`; its
    padding (id 0, which no token has) is stripped again so that texts of
    similar length share a batch and a batch of short texts runs few steps. The
    texts are vectorized once and cached; with `shuffle_seed` the order is
    reshuffled every epoch. The dataset has a known cardinality (computed from
    the texts' lengths), so progress bars count the steps of the first epoch too.
    """
    import numpy as np

    max_length = vectorizer.get_config()["output_sequence_length"]
    boundaries = list(range(bucket_width, max_length, bucket_width))

    def strip_padding(ids, label):
        length = tf.math.count_nonzero(ids, dtype=tf.int32)
        return tf.cast(ids[:length], tf.int32), label

    examples = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .batch(1024)
        .map(lambda text, label: (vectorizer(text), label), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(strip_padding, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
    )
    # One pass fills the cache and gives each bucket's size, hence the number of batches.
    lengths = np.fromiter(examples.map(lambda ids, _: tf.shape(ids)[0]).as_numpy_iterator(), int)
    bucket_sizes = np.bincount(np.searchsorted(boundaries, lengths, side="right"))
    num_batches = int(np.sum(-(-bucket_sizes // batch_size)))
    if shuffle_seed is not None:
        examples = examples.shuffle(len(lengths), seed=shuffle_seed, reshuffle_each_iteration=True)
    batches = examples.bucket_by_sequence_length(
        lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return batches.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(
        tf.data.AUTOTUNE
    )


def score_texts(model, vectorizer, texts, batch_size):
    """`model`'s output for each text (one value each), in the order of `texts`.

    Texts go through `length_bucketed_batches` (so short texts do not pay for
    `output_sequence_length` steps); each carries its index to put its score
    back in place.
    """
    import numpy as np

    indices = np.arange(len(texts), dtype="float32")  # exact in float32 below 2**24
    batches = length_bucketed_batches(vectorizer, texts, indices, batch_size)
    predict = tf.function(
        lambda ids: model(ids, training=False),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
    )
    scores = np.full(len(texts), np.nan, dtype="float32")
    for ids, index in batches:
        scores[index.numpy().astype("int64")] = predict(ids).numpy().reshape(-1)
    if np.isnan(scores).any():
        raise RuntimeError(
            f"score_texts: {int(np.isnan(scores).sum())} of {len(texts)} texts got no score "
            "from the pipeline (expected every text to be scored once)"
        )
    return scores
