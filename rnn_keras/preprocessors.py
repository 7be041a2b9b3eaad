"""Preprocessors: raw inputs (text, feature windows) to what a task's network reads.

As in keras-hub, a task holds a preprocessor and applies it in the input
pipeline: `fit`, `evaluate` and `predict` take raw inputs (lists or NumPy
arrays of strings, dicts of feature windows, or a `tf.data.Dataset` of them),
and the preprocessor is mapped over the batches, so the replicated network
only sees numbers. `task.export(path)` traces the preprocessor into the
SavedModel, which then serves raw inputs with no code of ours. A preprocessor
is a `keras.layers.Layer` whose `call(x, y=None, sample_weight=None)` returns
`x`, or `(x, y)`, or `(x, y, sample_weight)` (`keras.utils.pack_x_y_sample_weight`),
and is saved with the task in `.keras` files (vocabularies and statistics
included).

* `TextClassifierPreprocessor`: strings -> int32 token ids `(batch, time)`, 0 = padding.
* `LanguageModelPreprocessor`: strings <-> ids, by characters or words, with a
  start token; for training, `(ids, next ids, weights)`.
* `FeatureWindowPreprocessor`: named raw windows `{name: (batch, time)}` ->
  float features `(batch, time, features)`: numeric columns normalized with
  missing readings imputed and flagged, periodic columns as sin/cos, categories
  one-hot.

TensorFlow-only: string handling and `tf.data` are TensorFlow's.
"""

import keras
import numpy as np

from rnn_keras.preprocessing import CyclicalEncoding, ImputeMissing
from rnn_keras.text import ReviewStandardizer

__all__ = [
    "TextClassifierPreprocessor",
    "LanguageModelPreprocessor",
    "FeatureWindowPreprocessor",
]


def _is_string_data(x):
    """Whether `x` (a Python value, NumPy array or tensor) holds strings."""
    import tensorflow as tf

    if isinstance(x, str | bytes):
        return True
    if isinstance(x, tf.Tensor | tf.RaggedTensor):
        return x.dtype == tf.string
    if isinstance(x, tf.TensorSpec | tf.RaggedTensorSpec):
        return x.dtype == tf.string
    if isinstance(x, list | tuple):
        return len(x) > 0 and all(isinstance(item, str | bytes) for item in x)
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "OSU"
    return False


class _Preprocessor(keras.layers.Layer):
    """What every preprocessor shares: raw-input detection and packing of `(x, y, sw)`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def is_raw(self, x):
        """Whether `x` (a value or a `tf.data` element spec) is raw input for this preprocessor."""
        return _is_string_data(x)

    def compute_output_spec(self, *args, **kwargs):  # strings: no symbolic output spec
        raise NotImplementedError(f"{type(self).__name__} is called on data, not on keras.Input.")


@keras.saving.register_keras_serializable(package="rnn_keras")
class TextClassifierPreprocessor(_Preprocessor):
    """Raw strings `(batch,)` -> int32 token ids `(batch, time)` for a `SequenceClassifier`.

    A `keras.layers.TextVectorization` (the `tokenizer`) standardizes and splits
    each text (by default `ReviewStandardizer`: the text capped at
    `max_chars_per_token * sequence_length` bytes, invalid UTF-8 repaired,
    lowercased, HTML tags and punctuation removed) and keeps its first
    `sequence_length` tokens; id 0 is padding, id 1 out-of-vocabulary. A batch
    is then cut to its longest text (at least one step), so short texts do not
    pay for `sequence_length` steps; the model masks the padding, so each
    text's output does not depend on the batch it is in.

    Args:
        tokenizer: a `keras.layers.TextVectorization` with
            `output_sequence_length` set (None: one is built from the arguments
            below; call `adapt` before use).
        max_tokens: vocabulary size of the built tokenizer, padding and
            out-of-vocabulary ids included.
        sequence_length: tokens kept per text (the first ones).
        max_chars_per_token: the built tokenizer reads at most this many bytes
            per token kept, so a huge input costs no more than a long one.
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        tokenizer=None,
        max_tokens=20000,
        sequence_length=512,
        max_chars_per_token=20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if tokenizer is None:
            tokenizer = keras.layers.TextVectorization(
                max_tokens=max_tokens,
                standardize=ReviewStandardizer(max_chars=max_chars_per_token * sequence_length),
                output_sequence_length=sequence_length,
                name="tokenizer",
            )
        elif isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if not isinstance(tokenizer, keras.layers.TextVectorization):
            raise ValueError(
                "TextClassifierPreprocessor: `tokenizer` must be a keras.layers.TextVectorization."
                f" Received: tokenizer={tokenizer!r}"
            )
        length = tokenizer.get_config().get("output_sequence_length")
        if tokenizer.get_config().get("output_mode") != "int" or not length:
            raise ValueError(
                "TextClassifierPreprocessor: the tokenizer must output int ids with "
                "`output_sequence_length` set. Received: output_mode="
                f"{tokenizer.get_config().get('output_mode')!r}, output_sequence_length={length!r}"
            )
        self.tokenizer = tokenizer
        self.sequence_length = int(length)
        self.max_tokens = tokenizer.get_config().get("max_tokens")
        self.max_chars_per_token = max_chars_per_token

    def adapt(self, texts, batch_size=1024):
        """Learns the vocabulary from `texts` (a list, array or `tf.data` of strings)."""
        import tensorflow as tf

        if not isinstance(texts, tf.data.Dataset):
            texts = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object))
            texts = texts.batch(batch_size)
        self.tokenizer.adapt(texts)

    def vocabulary_size(self):
        """How many ids the tokenizer gives (padding and out-of-vocabulary included)."""
        return self.tokenizer.vocabulary_size()

    def get_vocabulary(self):
        return self.tokenizer.get_vocabulary()

    def token_ids(self, x):
        """`(batch,)` strings -> int32 ids `(batch, time)`, cut to the longest text (>= 1 step)."""
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.string)
        if x.shape.rank != 1:
            raise ValueError(
                "TextClassifierPreprocessor expects a batch of strings of shape (batch,). "
                f"Received: shape={tuple(x.shape)}"
            )
        ids = tf.cast(self.tokenizer(x), tf.int32)
        lengths = tf.math.count_nonzero(ids, axis=1, dtype=tf.int32)
        longest = tf.reduce_max(tf.concat([lengths, [1]], axis=0))  # >= 1, also for no text
        return ids[:, :longest]

    def call(self, x, y=None, sample_weight=None):
        return keras.utils.pack_x_y_sample_weight(self.token_ids(x), y, sample_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizer": keras.layers.serialize(self.tokenizer),
            "max_tokens": self.max_tokens,
            "sequence_length": self.sequence_length,
            "max_chars_per_token": self.max_chars_per_token,
        }


_SPLITS = ("characters", "words")


@keras.saving.register_keras_serializable(package="rnn_keras")
class LanguageModelPreprocessor(_Preprocessor):
    """Strings <-> token ids for a `LanguageModel`, by characters or by words, with a start token.

    Ids come from a `keras.layers.StringLookup`: id 0 is out-of-vocabulary (a
    character or word not seen by `adapt`), never generated, and also pads a
    batch (padded positions get weight 0). The `start_token` is in the
    vocabulary: training texts are read after it, so the model learns how a
    text begins, and an empty prompt starts from it.

    For training, `call(texts)` gives `(inputs, targets, weights)`, each
    `(batch, time)`: inputs = start token + ids[:-1], targets = ids, weights 1
    on real positions (`sequence_length` caps the time axis).

    Args:
        vocabulary: the tokens, in id order from id 1 (None: call `adapt`).
        split: "characters" (Unicode code points) or "words" (runs of
            non-whitespace; generation joins them with one space).
        start_token: the token read before a text ("\\n" suits characters).
        sequence_length: at most this many tokens of a training text (None: all).
        max_vocabulary: `adapt` keeps the most frequent tokens (None: all).
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        vocabulary=None,
        split="characters",
        start_token="\n",
        sequence_length=None,
        max_vocabulary=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if split not in _SPLITS:
            raise ValueError(
                f"LanguageModelPreprocessor: `split` must be one of {_SPLITS}. "
                f"Received: split={split!r}"
            )
        if not isinstance(start_token, str) or not start_token:
            raise ValueError(
                "LanguageModelPreprocessor: `start_token` must be a non-empty string. "
                f"Received: start_token={start_token!r}"
            )
        self.split = split
        self.start_token = start_token
        self.sequence_length = sequence_length
        self.max_vocabulary = max_vocabulary
        self.lookup = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -- vocabulary ----------------------------------------------------------------------

    def set_vocabulary(self, vocabulary):
        """Sets the tokens of ids 1, 2, ...; the start token is added if missing.

        The lookup is built with the vocabulary, so it is saved in the config
        (JSON), where tokens such as "\\n" survive (a vocabulary file, one token
        per line, would split them).
        """
        tokens = [str(token) for token in vocabulary]
        if self.start_token not in tokens:
            tokens = [self.start_token, *tokens]
        if len(set(tokens)) != len(tokens) or "" in tokens:
            raise ValueError(
                "LanguageModelPreprocessor: the vocabulary must hold distinct, non-empty tokens. "
                f"Received: {len(tokens)} tokens, {len(set(tokens))} distinct"
            )
        self.lookup = keras.layers.StringLookup(
            vocabulary=tokens, num_oov_indices=1, mask_token=None, name="token_lookup"
        )

    def adapt(self, texts):
        """Learns the vocabulary: every token of `texts` (a list of strings), most frequent first
        (ties in code-point order), capped at `max_vocabulary`."""
        import collections

        counts = collections.Counter()
        for text in texts:
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            counts.update(text if self.split == "characters" else text.split())
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        if self.max_vocabulary:
            ranked = ranked[: self.max_vocabulary - 2]  # with the start and unknown tokens
        self.set_vocabulary(ranked)

    def _check_vocabulary(self):
        if self.lookup is None:
            raise ValueError(
                "LanguageModelPreprocessor has no vocabulary yet. Expected: `vocabulary=` or a "
                "call to `adapt(texts)` first. Received: neither"
            )

    def vocabulary_size(self):
        self._check_vocabulary()
        return self.lookup.vocabulary_size()

    def get_vocabulary(self):
        """The token of each id (id 0: "[UNK]")."""
        self._check_vocabulary()
        return self.lookup.get_vocabulary()

    @property
    def start_id(self):
        """The start token's id, an int32 scalar tensor."""
        import tensorflow as tf

        return tf.cast(self.lookup(tf.constant(self.start_token)), tf.int32)

    # -- strings <-> ids -----------------------------------------------------------------

    def tokenize(self, texts):
        """Strings `(batch,)` -> `(ids (batch, time) int32, padded with 0, lengths (batch,))`."""
        import tensorflow as tf

        self._check_vocabulary()
        texts = tf.convert_to_tensor(texts, tf.string)
        if self.split == "characters":
            tokens = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        else:
            tokens = tf.strings.split(texts)
        ids = tf.cast(tf.ragged.map_flat_values(self.lookup, tokens), tf.int32)
        return ids.to_tensor(0), tf.cast(ids.row_lengths(), tf.int32)

    def detokenize(self, ids):
        """Ids `(batch, time)` -> strings `(batch,)`, tokens joined ("" or one space)."""
        import tensorflow as tf

        vocabulary = tf.constant(self.get_vocabulary())
        tokens = tf.gather(vocabulary, ids)
        return tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)

    @property
    def separator(self):
        return "" if self.split == "characters" else " "

    def call(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if y is not None or sample_weight is not None:
            raise ValueError(
                "LanguageModelPreprocessor: a language model learns from text alone; its "
                "targets are the next tokens. Received: labels or sample weights besides the text"
            )
        ids, lengths = self.tokenize(x)
        if self.sequence_length is not None:
            ids = ids[:, : self.sequence_length]
            lengths = tf.minimum(lengths, self.sequence_length)
        start = tf.fill([tf.shape(ids)[0], 1], self.start_id)
        inputs = tf.concat([start, ids[:, :-1]], axis=1)
        weights = tf.cast(tf.sequence_mask(lengths, tf.shape(ids)[1]), tf.float32)
        return inputs, ids, weights

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": None if self.lookup is None else self.get_vocabulary()[1:],
            "split": self.split,
            "start_token": self.start_token,
            "sequence_length": self.sequence_length,
            "max_vocabulary": self.max_vocabulary,
        }


_INPUT_DTYPES = {"numeric": "float32", "periodic": "int32", "categorical": "string"}


@keras.saving.register_keras_serializable(package="rnn_keras")
class FeatureWindowPreprocessor(_Preprocessor):
    """Named raw windows `{name: (batch, time)}` -> float features `(batch, time, features)`.

    For sensor windows as they arrive: numeric columns go through a
    `Normalization` (learnt by `adapt`) and `ImputeMissing` (a missing reading,
    NaN, becomes 0, the training mean, beside a 0/1 indicator per column);
    periodic integer columns (hour, month) become `[sin, cos]` of their phase
    (`CyclicalEncoding`); categorical string columns become one-hot vectors
    (`StringLookup`, with an out-of-vocabulary slot). Columns in `unused` are
    accepted (a served model takes them) and ignored. Features, in order:
    normalized numeric, their indicators, each periodic column, each
    categorical column.

    Args:
        numeric: names of the float32 columns.
        periodic: `{name: period}` or `{name: [period, offset]}` (offset: the
            value at phase 0, e.g. 1 for months numbered from 1); int32 columns.
        categorical: `{name: vocabulary}`; string columns.
        unused: `{name: dtype}` of columns accepted and ignored.
        sequence_length: time steps per window; when set, a window of another
            length is refused (and the exported `serve` signature fixes it).
            None: any length.
        **kwargs: `name`, `dtype`.
    """

    def __init__(
        self,
        numeric=(),
        periodic=None,
        categorical=None,
        unused=None,
        sequence_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sequence_length = None if sequence_length is None else int(sequence_length)
        self.numeric = list(numeric)
        self.periodic = {
            name: list(spec) if isinstance(spec, list | tuple) else [spec, 0]
            for name, spec in (periodic or {}).items()
        }
        self.categorical = {name: list(values) for name, values in (categorical or {}).items()}
        self.unused = dict(unused or {})
        names = [*self.numeric, *self.periodic, *self.categorical, *self.unused]
        if not names or len(set(names)) != len(names):
            raise ValueError(
                "FeatureWindowPreprocessor: expected at least one column and distinct names. "
                f"Received: {names}"
            )
        self.normalization = None
        if self.numeric:  # built now, so a loaded preprocessor receives its statistics
            self.normalization = keras.layers.Normalization(name="normalize")
            self.normalization.build((None, len(self.numeric)))
        self.impute = ImputeMissing(0.0, name="impute_missing")
        self.encodings = [
            CyclicalEncoding(period, offset=offset, name=f"{name}_phase")
            for name, (period, offset) in self.periodic.items()
        ]
        self.lookups = [
            keras.layers.StringLookup(vocabulary=values, num_oov_indices=1, name=f"{name}_lookup")
            for name, values in self.categorical.items()
        ]

    @property
    def input_dtypes(self):
        """`{name: dtype}` of every input column, in the order of the arguments."""
        return {
            **dict.fromkeys(self.numeric, _INPUT_DTYPES["numeric"]),
            **dict.fromkeys(self.periodic, _INPUT_DTYPES["periodic"]),
            **dict.fromkeys(self.categorical, _INPUT_DTYPES["categorical"]),
            **self.unused,
        }

    @property
    def feature_size(self):
        return (
            2 * len(self.numeric)
            + 2 * len(self.periodic)
            + sum(len(values) + 1 for values in self.categorical.values())
        )

    def adapt(self, rows):
        """Learns the numeric columns' mean and variance from `rows` `(n, len(numeric))`
        (complete rows only: a row with a missing reading is left out)."""
        rows = np.asarray(rows, dtype="float32")
        if rows.ndim != 2 or rows.shape[1] != len(self.numeric):
            raise ValueError(
                f"FeatureWindowPreprocessor.adapt expects rows of the {len(self.numeric)} numeric "
                f"columns {self.numeric}. Received: shape={rows.shape}"
            )
        self.normalization.adapt(rows[~np.isnan(rows).any(axis=1)])

    def target_statistics(self, column):
        """(mean, standard deviation) that `adapt` learnt for a numeric `column`."""
        index = self.numeric.index(column)
        mean = np.asarray(self.normalization.mean).reshape(-1)[index]
        variance = np.asarray(self.normalization.variance).reshape(-1)[index]
        return float(mean), float(np.sqrt(variance))

    def is_raw(self, x):
        return isinstance(x, dict)

    def call(self, x, y=None, sample_weight=None):
        from keras import ops

        missing = sorted(set(self.input_dtypes) - set(x))
        if missing:
            raise ValueError(
                f"FeatureWindowPreprocessor: missing input columns {missing}. Expected: "
                f"{list(self.input_dtypes)}. Received: {sorted(x)}"
            )
        for name in self.input_dtypes:
            length = x[name].shape[-1] if len(x[name].shape) == 2 else None
            if None not in (length, self.sequence_length) and length != self.sequence_length:
                raise ValueError(
                    f"FeatureWindowPreprocessor: column {name!r} must hold windows of "
                    f"{self.sequence_length} steps. Received: {length} steps"
                )
        parts = []
        if self.numeric:
            numeric = ops.stack([ops.cast(x[name], "float32") for name in self.numeric], axis=-1)
            parts.append(self.impute(self.normalization(numeric)))
        for encoding, name in zip(self.encodings, self.periodic, strict=True):
            parts.append(encoding(x[name]))
        for lookup, (name, values) in zip(self.lookups, self.categorical.items(), strict=True):
            # ids, then one-hot (the lookup's own one_hot mode fails inside tf.data's map)
            parts.append(ops.one_hot(lookup(x[name]), len(values) + 1))
        features = ops.concatenate([ops.cast(part, "float32") for part in parts], axis=-1)
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "numeric": self.numeric,
            "periodic": self.periodic,
            "categorical": self.categorical,
            "unused": self.unused,
            "sequence_length": self.sequence_length,
        }
