"""`LanguageModelPreprocessor`: strings to ids and back, by characters or words, with a
start token; for training, `(ids, next ids, weights)`."""

import keras

from rnn_keras.models.preprocessor import Preprocessor

__all__ = ["LanguageModelPreprocessor"]


_SPLITS = ("characters", "words")


@keras.saving.register_keras_serializable(package="rnn_keras")
class LanguageModelPreprocessor(Preprocessor):
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
