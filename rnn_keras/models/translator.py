"""Sequence-to-sequence translation with attention: raw text in one language in, raw text in
another out.

    preprocessor = rnn_keras.TranslatorPreprocessor()
    preprocessor.adapt(german, english)
    translator = rnn_keras.Translator.from_preprocessor(preprocessor, units=256)
    translator.compile()
    translator.fit(german, english, epochs=10)
    translator.translate(["Ein Hund läuft im Schnee."], beam_size=5)

The network is Luong et al. (2015)'s: a `RecurrentBackbone` reads the source,
an `AttentionDecoder` (attention over the encoder's masked outputs, input
feeding) writes the target under teacher forcing, and a `Dense` layer gives the
next word's logits. With `attention=None` it is the same model without
attention: the decoder sees the source only through the initial state, made
from the encoder's final state (Sutskever et al. 2014), the baseline the guide's
claim is measured against.

Decoding (TensorFlow, in-graph, so the SavedModel serves it) is greedy or beam
search with Wu et al. (2016)'s length penalty lp(n) = ((5 + n) / 6)^alpha: a
hypothesis of n tokens (its end token included) and log-probability L scores
L / lp(n). Beam search also scores the greedy hypothesis and returns it when it
is better, so a wider beam never returns a lower score than greedy.

TensorFlow-only: strings and the search loops are TensorFlow's.
"""

import keras
from keras import ops

from rnn_keras.layers.attention import AttentionDecoder, SequenceAttention
from rnn_keras.layers.cells import get_cell
from rnn_keras.layers.pooling import MaskedGlobalPooling1D
from rnn_keras.models.backbone import RecurrentBackbone
from rnn_keras.models.task import Task
from rnn_keras.models.translator_preprocessor import (
    END_ID,
    START_ID,
    TranslatorPreprocessor,
)
from rnn_keras.utils.optional import import_module

__all__ = [
    "LENGTH_BUCKETS",
    "Translator",
    "bleu_by_length",
    "bleu_scores",
    "decoding_grid",
    "length_bucket",
    "length_penalty",
    "plot_attention",
    "plot_attention_maps",
    "plot_bleu_by_length",
    "tokenized_bleu",
]

_NEVER = -1e9  # the log-probability of a token that may not be produced
# Source-length buckets (words, inclusive; None: no upper end) of `bleu_by_length`.
LENGTH_BUCKETS = ((1, 10), (11, 15), (16, 20), (21, None))


def length_penalty(lengths, alpha):
    """Wu et al. (2016): ((5 + n) / 6)^alpha (1 for alpha 0)."""
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)


@keras.saving.register_keras_serializable(package="rnn_keras")
class Translator(Task):
    """An attentional encoder-decoder: source ids and target ids (teacher forcing) -> the next
    target word's float32 logits `(batch, target_steps, target_vocabulary_size)`.

        memory = backbone(source)                          (masked where the source pads)
        s_0 = tanh(W_b pool_last(memory))                  (the decoder cell's initial states)
        h~_t, a_t = decoder(embed(y_{t-1}), memory, s)     (`AttentionDecoder`)
        logits_t = W_o dropout(h~_t)

    Inputs: `{"source_ids": (batch, S), "target_ids": (batch, T)}`, int32, 0 = padding.

    Args:
        backbone: the encoder, a `RecurrentBackbone` with `vocabulary_size`.
        target_vocabulary_size: how many target ids there are (padding, unknown, start
            and end included).
        embedding_dim: width of the target embedding.
        cell: the decoder's cell, "lstm", "gru" or "simple".
        units: the decoder cell's state size and the width of h~.
        attention: "additive", "general", "dot" or None (no attention: the baseline).
        attention_units: the additive score's width (default `units`).
        input_feeding: whether h~_{t-1} joins the next decoder input.
        dropout: rate of `Dropout` on the target embeddings and on h~.
        preprocessor: a `TranslatorPreprocessor` (strings in and out).
        **kwargs: `name`, `dtype`, `trainable`.
    """

    preprocessor_cls = TranslatorPreprocessor
    config_keys = (
        "target_vocabulary_size",
        "embedding_dim",
        "cell",
        "units",
        "attention",
        "attention_units",
        "input_feeding",
        "dropout",
    )

    def __init__(
        self,
        backbone,
        target_vocabulary_size,
        embedding_dim=256,
        cell="lstm",
        units=256,
        attention="general",
        attention_units=None,
        input_feeding=True,
        dropout=0.0,
        preprocessor=None,
        **kwargs,
    ):
        self._check_backbone(backbone)
        if backbone.vocabulary_size is None:
            raise ValueError(
                "Translator: the encoder reads source token ids, so its backbone needs "
                "`vocabulary_size`. Received: a backbone of float features"
            )
        if attention is not None and attention not in ("additive", "general", "dot"):
            raise ValueError(
                "Translator: `attention` must be 'additive', 'general', 'dot' or None. "
                f"Received: attention={attention!r}"
            )
        if not isinstance(target_vocabulary_size, int) or target_vocabulary_size <= END_ID:
            raise ValueError(
                "Translator: `target_vocabulary_size` must be an integer above 3 (padding, "
                f"unknown, start, end). Received: target_vocabulary_size={target_vocabulary_size!r}"
            )

        # === Layers ===
        decoder_cell = get_cell(cell)(units, name="decoder_cell")
        num_states = (
            len(decoder_cell.state_size) if isinstance(decoder_cell.state_size, list | tuple) else 1
        )
        scorer = None
        if attention is not None:
            scorer = SequenceAttention(
                attention,
                units=(attention_units or units) if attention == "additive" else None,
                name="attention",
            )
        self.backbone = backbone
        self.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, mask_zero=True, name="target_embedding"
        )
        self.final_state = MaskedGlobalPooling1D(
            "last", bidirectional=backbone.bidirectional, name="final_state"
        )
        self.bridge = keras.layers.Dense(units * num_states, activation="tanh", name="bridge")
        self.decoder = AttentionDecoder(
            decoder_cell, scorer, units=units, input_feeding=input_feeding, name="decoder"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.next_word_head = keras.layers.Dense(
            target_vocabulary_size, dtype="float32", name="next_word_logits"
        )

        # === Functional model ===
        source = keras.Input(shape=(None,), dtype="int32", name="source_ids")
        target = keras.Input(shape=(None,), dtype="int32", name="target_ids")
        memory = backbone(source)
        memory_mask = ops.not_equal(source, 0)
        initial_state = ops.split(self.bridge(self.final_state(memory)), num_states, axis=-1)
        x = self.embedding_dropout(self.target_embedding(target))
        attentional, _, _ = self.decoder(
            x, memory, memory_mask=memory_mask, initial_state=initial_state
        )
        logits = self.next_word_head(self.output_dropout(attentional))
        super().__init__(
            inputs={"source_ids": source, "target_ids": target}, outputs=logits, **kwargs
        )

        # === Config ===
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.attention = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.num_states = num_states
        self._set_preprocessor(preprocessor)
        self._searches = _Searches()

    @classmethod
    def from_preprocessor(
        cls,
        preprocessor,
        cell="lstm",
        units=256,
        embedding_dim=256,
        encoder_units=None,
        bidirectional=True,
        dropout=0.0,
        **kwargs,
    ):
        """A translator sized to an adapted `preprocessor`'s vocabularies, its encoder a
        one-layer (bidirectional) `RecurrentBackbone` of `encoder_units` per direction
        (default: `units` / 2 when bidirectional, else `units`)."""
        if encoder_units is None:
            encoder_units = units // 2 if bidirectional else units
        backbone = RecurrentBackbone(
            cell=cell,
            units=encoder_units,
            bidirectional=bidirectional,
            vocabulary_size=preprocessor.source_vocabulary_size,
            embedding_dim=embedding_dim,
            dropout=dropout,
        )
        return cls(
            backbone,
            preprocessor.target_vocabulary_size,
            embedding_dim=embedding_dim,
            cell=cell,
            units=units,
            dropout=dropout,
            preprocessor=preprocessor,
            **kwargs,
        )

    # -- training --------------------------------------------------------------------------

    def default_loss(self):
        """Sparse categorical cross-entropy on the logits, weighted to real target positions."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """As `Task.compile`; "auto" metrics: the next word's accuracy on real positions."""
        if metrics == "auto":
            kwargs.setdefault(
                "weighted_metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            )
            metrics = None
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def dataset(self, sources, targets, batch_size=64, shuffle=False, seed=None):
        """A `tf.data.Dataset` of preprocessed teacher-forcing batches from parallel strings.

        Pairs are sorted by source length and cut into batches of `batch_size`
        (little padding); with `shuffle`, the batches come in a new order every
        epoch (seeded by `seed`).
        """
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("dataset")
        sources, targets = list(sources), list(targets)
        if len(sources) != len(targets) or not sources:
            raise ValueError(
                "Translator.dataset: expected parallel, non-empty lists of sources and targets. "
                f"Received: {len(sources)} sources, {len(targets)} targets"
            )
        lengths = [len(str(text).split()) for text in sources]
        order = np.argsort(lengths, kind="stable")
        starts = np.arange(0, len(order), batch_size)
        pairs = tf.data.Dataset.from_tensor_slices(
            (
                tf.constant([sources[i] for i in order], tf.string),
                tf.constant([targets[i] for i in order], tf.string),
            )
        )
        batches = pairs.batch(batch_size)
        if shuffle:
            batches = batches.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
        batches = batches.map(self.preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        return batches.prefetch(tf.data.AUTOTUNE)

    # -- decoding ----------------------------------------------------------------------------

    def _require_preprocessor(self, method):
        if self.preprocessor is None:
            raise ValueError(
                f"Translator.{method} works on strings, so it needs a preprocessor. Expected: "
                "Translator(..., preprocessor=rnn_keras.TranslatorPreprocessor(...)); on token "
                f"ids, use translate_ids. Received: preprocessor=None"
            )

    def encode(self, source_ids):
        """`(memory, memory_mask, keys, decoder state)` for int32 source ids `(batch, S)`."""
        memory = self.backbone(source_ids, training=False)
        memory_mask = ops.not_equal(source_ids, 0)
        cell_state = ops.split(
            self.bridge(self.final_state(memory, mask=memory_mask)), self.num_states, axis=-1
        )
        attentional = ops.zeros((ops.shape(source_ids)[0], self.units), memory.dtype)
        scorer = self.decoder.attention
        keys = None if scorer is None else scorer.keys(memory)
        return memory, memory_mask, keys, [*cell_state, attentional]

    def step(self, ids, state, memory, memory_mask, keys):
        """One target word per row: `(float32 log-probabilities (batch, V), attention weights
        (batch, S), new state)`."""
        embedding = self.target_embedding
        x = ops.cast(ops.take(embedding.embeddings, ids, axis=0), embedding.compute_dtype)
        attentional, weights, state = self.decoder.step(
            x, state, memory, memory_mask, training=False, keys=keys
        )
        logits = ops.cast(self.next_word_head(attentional), "float32")
        return ops.log_softmax(logits, axis=-1), ops.cast(weights, "float32"), state

    def score_ids(self, source_ids, target_ids):
        """The log-probability of each target `(batch, T)` (its words then the end token,
        padded with 0) given its source, float32 `(batch,)`."""
        import tensorflow as tf

        target_ids = tf.convert_to_tensor(target_ids, tf.int32)
        inputs = tf.concat([tf.fill([tf.shape(target_ids)[0], 1], START_ID), target_ids], 1)
        logits = self({"source_ids": source_ids, "target_ids": inputs[:, :-1]}, training=False)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        picked = tf.gather(logp, target_ids, batch_dims=2)
        return tf.reduce_sum(tf.where(target_ids > 0, picked, 0.0), axis=1)

    def _max_steps(self, source_ids, max_length):
        """The most words each row may produce, `(batch,)`: 2 x its source's + 10, at most
        `max_length` (per row, so a sentence decodes alike alone and in a padded batch)."""
        import tensorflow as tf

        lengths = tf.reduce_sum(tf.cast(source_ids > 0, tf.int32), axis=1)
        return tf.minimum(2 * lengths + 10, max_length)

    def _greedy(self, encoded, max_steps, alpha):
        import tensorflow as tf

        memory, memory_mask, keys, state = encoded
        batch = tf.shape(memory)[0]
        never = tf.one_hot([0, START_ID], self.target_vocabulary_size, on_value=_NEVER)
        never = tf.reduce_sum(never, axis=0)

        def body(t, current, state, done, total, lengths, ids, weights):
            logp, attention, state = self.step(current, state, memory, memory_mask, keys)
            chosen = tf.argmax(logp + never, axis=-1, output_type=tf.int32)
            chosen = tf.where(done, 0, chosen)
            picked = tf.gather(logp, chosen, batch_dims=1)
            total += tf.where(done, 0.0, picked)
            lengths += tf.cast(~done, tf.int32)
            done |= (chosen == END_ID) | (t + 1 >= max_steps)
            return (
                t + 1, chosen, state, done, total, lengths,
                ids.write(t, chosen), weights.write(t, attention),
            )  # fmt: skip

        loop = (
            0,
            tf.fill([batch], START_ID),
            state,
            tf.zeros([batch], tf.bool),
            tf.zeros([batch], tf.float32),
            tf.zeros([batch], tf.int32),
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
            tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None]),
        )
        _, _, _, _, total, lengths, ids, weights = tf.while_loop(
            lambda t, _c, _s, done, *_: ~tf.reduce_all(done), body, loop
        )
        return (
            _stacked(ids, [batch], tf.int32),
            total,
            total / length_penalty(lengths, alpha),
            _stacked(weights, [batch, tf.shape(memory)[1]], tf.float32),
        )

    def _beam(self, encoded, max_steps, beam_size, alpha):
        import tensorflow as tf

        memory, memory_mask, keys, state = encoded
        batch, k, vocabulary = tf.shape(memory)[0], beam_size, self.target_vocabulary_size

        def tiled(x):  # (batch, ...) -> (batch * k, ...), each row k times in a row
            return tf.repeat(x, k, axis=0)

        memory, memory_mask, state = tiled(memory), tiled(memory_mask), [tiled(s) for s in state]
        keys = None if keys is None else tiled(keys)
        never = tf.reduce_sum(tf.one_hot([0, START_ID], vocabulary, on_value=_NEVER), axis=0)
        only_padding = tf.one_hot(0, vocabulary, on_value=0.0, off_value=_NEVER)
        first = tf.one_hot(0, k, on_value=0.0, off_value=_NEVER)  # one live beam at first
        rows = tf.range(batch)[:, None] * k

        def body(t, current, state, done, total, lengths, ids, parents, weights):
            logp, attention, state = self.step(current, state, memory, memory_mask, keys)
            logp = tf.reshape(logp + never, [batch, k, vocabulary])
            logp = tf.where(done[:, :, None], only_padding, logp)  # a finished beam only pads
            candidates = total[:, :, None] + logp
            grown = tf.where(done, lengths, lengths + 1)[:, :, None]
            ranked = candidates / length_penalty(grown, alpha)
            _, best = tf.math.top_k(tf.reshape(ranked, [batch, -1]), k=k)
            parent, word = best // vocabulary, best % vocabulary
            total = tf.gather(tf.reshape(candidates, [batch, -1]), best, batch_dims=1)
            lengths = tf.gather(grown[:, :, 0], parent, batch_dims=1)
            done = tf.gather(done, parent, batch_dims=1) | (word == END_ID)
            done |= (t + 1 >= max_steps)[:, None]
            flat = tf.reshape(rows + parent, [-1])
            state = [tf.gather(s, flat) for s in state]
            attention = tf.gather(attention, flat)
            return (
                t + 1, tf.reshape(word, [batch * k]), state, done, total, lengths,
                ids.write(t, word), parents.write(t, parent), weights.write(t, attention),
            )  # fmt: skip

        loop = (
            0,
            tf.fill([batch * k], START_ID),
            state,
            tf.zeros([batch, k], tf.bool),
            tf.tile(first[None], [batch, 1]),
            tf.zeros([batch, k], tf.int32),
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, None]),
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None, None]),
            tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None]),
        )
        _, _, _, _, total, lengths, ids, parents, weights = tf.while_loop(
            lambda t, _c, _s, done, *_: ~tf.reduce_all(done), body, loop
        )
        normalized = total / length_penalty(lengths, alpha)
        best = tf.argmax(normalized, axis=1, output_type=tf.int32)
        steps = ids.size()
        sources = tf.shape(memory)[1]
        ids = _stacked(ids, [batch, k], tf.int32)  # (batch, steps, k)
        parents = _stacked(parents, [batch, k], tf.int32)
        weights = _stacked(weights, [batch * k, sources], tf.float32)  # (batch * k, steps, S)
        weights = tf.transpose(tf.reshape(weights, [batch, k, steps, sources]), [0, 2, 1, 3])

        def back(beam, step):  # follows the best hypothesis from its last word to its first
            word = tf.gather(ids[:, step], beam, batch_dims=1)
            attention = tf.gather(weights[:, step], beam, batch_dims=1)
            return tf.gather(parents[:, step], beam, batch_dims=1), word, attention

        def back_body(step, beam, words, attentions):
            beam, word, attention = back(beam, step)
            return step - 1, beam, words.write(step, word), attentions.write(step, attention)

        _, _, words, attentions = tf.while_loop(
            lambda step, *_: step >= 0,
            back_body,
            (
                steps - 1,
                best,
                tf.TensorArray(tf.int32, size=steps, element_shape=[None]),
                tf.TensorArray(tf.float32, size=steps, element_shape=[None, None]),
            ),
        )
        pick = tf.stack([tf.range(batch), best], axis=1)
        return (
            _stacked(words, [batch], tf.int32),
            tf.gather_nd(total, pick),
            tf.gather_nd(normalized, pick),
            _stacked(attentions, [batch, sources], tf.float32),
        )

    def search_ids(self, source_ids, beam_size=1, max_length=100, length_penalty_alpha=0.0):
        """In-graph decoding of int32 source ids `(batch, S)`.

        Returns `(ids, log_probability, score, weights)`: target ids `(batch, T)`
        (the end token included, then 0), their log-probability and
        length-normalised score `(batch,)`, and the attention weights
        `(batch, T, S)` of each produced word. `beam_size` 1 is greedy; above, beam
        search, which returns the greedy hypothesis where that scores higher.
        `max_length` caps the words produced (default per batch: 2 x the longest
        source + 10).
        """
        import tensorflow as tf

        encoded = self.encode(source_ids)
        max_steps = self._max_steps(source_ids, max_length)
        greedy = self._greedy(encoded, max_steps, length_penalty_alpha)
        if beam_size == 1:
            return greedy
        beam = self._beam(encoded, max_steps, beam_size, length_penalty_alpha)
        better = greedy[2] > beam[2]
        width = tf.maximum(tf.shape(greedy[0])[1], tf.shape(beam[0])[1])

        def padded(x):
            pads = [[0, 0], [0, width - tf.shape(x)[1]]] + [[0, 0]] * (len(x.shape) - 2)
            return tf.pad(x, pads)

        def choose(a, b):
            if len(a.shape) == 1:
                return tf.where(better, a, b)
            a, b = padded(a), padded(b)
            return tf.where(tf.reshape(better, [-1] + [1] * (len(a.shape) - 1)), a, b)

        return tuple(choose(a, b) for a, b in zip(greedy, beam, strict=True))

    def translate_ids(self, source_ids, beam_size=5, max_length=100, length_penalty_alpha=0.6):
        """`search_ids`, compiled once per beam size (a `tf.function`)."""
        import tensorflow as tf

        _check_search(beam_size, max_length, length_penalty_alpha)
        searches = self._searches.by_beam_size
        if beam_size not in searches:
            searches[beam_size] = tf.function(
                lambda ids, length, alpha: self.search_ids(ids, beam_size, length, alpha),
                input_signature=[  # a batch of any size: the loops' shapes stay unknown
                    tf.TensorSpec([None, None], tf.int32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.float32),
                ],
            )
        return searches[beam_size](
            tf.convert_to_tensor(source_ids, tf.int32),
            tf.constant(max_length, tf.int32),
            tf.constant(length_penalty_alpha, tf.float32),
        )

    def translate(
        self, texts, beam_size=5, max_length=100, length_penalty_alpha=0.6, batch_size=64
    ):
        """Translates strings: a list of strings (or one string) in, a list of strings out.

        Words the target vocabulary does not hold come out as "[UNK]".
        """
        import tensorflow as tf

        self._require_preprocessor("translate")
        single = isinstance(texts, str)
        texts = [texts] if single else [str(t) for t in texts]
        out = []
        for start in range(0, len(texts), batch_size):
            source = self.preprocessor.source_ids(tf.constant(texts[start : start + batch_size]))
            ids = self.translate_ids(source, beam_size, max_length, length_penalty_alpha)[0]
            out += [t.decode("utf-8") for t in self.preprocessor.detokenize(ids).numpy()]
        return out[0] if single else out

    def attention_map(self, text, beam_size=5, max_length=100, length_penalty_alpha=0.6):
        """`(source words, target words, weights (target, source))` of one translation,
        the end token included on the target side, for `plot_attention`."""
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("attention_map")
        source = self.preprocessor.source_ids(tf.constant([str(text)]))
        ids, _, _, weights = self.translate_ids(source, beam_size, max_length, length_penalty_alpha)
        ids, source = ids.numpy()[0], source.numpy()[0]
        n_target = (
            int(np.argmax(ids == END_ID)) + 1 if (ids == END_ID).any() else int((ids > 0).sum())
        )
        n_source = int((source > 0).sum())
        vocabulary = np.asarray(self.preprocessor.target_words, dtype=object)
        return (
            list(self.preprocessor.source_tokens(source[:n_source])),
            list(vocabulary[ids[:n_target]]),
            weights.numpy()[0, :n_target, :n_source],
        )

    serving_options = ("beam_size", "length_penalty_alpha", "max_length")

    def serving_endpoints(self, beam_size=5, length_penalty_alpha=0.6, max_length=100):
        """The SavedModel's endpoint: `translate(text: tf.string [None]) -> tf.string [None]`,
        beam search inside (`export(path, beam_size=5, length_penalty_alpha=0.6,
        max_length=100)`). A zero-size batch gives a zero-size answer; an empty or
        unreadable sentence gives a (possibly empty) translation, never an error."""
        import tensorflow as tf

        self._require_serving()
        _check_search(beam_size, max_length, length_penalty_alpha)
        preprocessor = self.preprocessor

        def translate(text):
            def run():
                source = preprocessor.source_ids(text)
                ids = self.search_ids(source, beam_size, max_length, length_penalty_alpha)[0]
                return preprocessor.detokenize(ids)

            return tf.cond(tf.size(text) > 0, run, lambda: tf.zeros([0], tf.string))

        signature = [tf.TensorSpec([None], tf.string, name="text")]
        return {"translate": (translate, signature)}


class _Searches:
    """The compiled searches, by beam size; a plain object, so saving skips them."""

    def __init__(self):
        self.by_beam_size = {}


def _check_search(beam_size, max_length, alpha):
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(
            f"Translator: `beam_size` must be a positive integer. Received: beam_size={beam_size!r}"
        )
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(
            "Translator: `max_length` must be a positive integer. "
            f"Received: max_length={max_length!r}"
        )
    if not alpha >= 0:
        raise ValueError(
            "Translator: `length_penalty_alpha` must be >= 0 (0: no penalty). "
            f"Received: length_penalty_alpha={alpha!r}"
        )


def _stacked(array, row_shape, dtype):
    """A TensorArray of per-step `row_shape` rows stacked as `(row_shape[0], steps, ...)`;
    zero steps give an empty axis, not an error."""
    import tensorflow as tf

    return tf.cond(
        array.size() > 0,
        lambda: tf.experimental.numpy.moveaxis(array.stack(), 0, 1),
        lambda: tf.zeros([row_shape[0], 0, *row_shape[1:]], dtype),
    )


def plot_attention(source_words, target_words, weights, path=None, title=None, ax=None):
    """A heatmap of `weights (target, source)`: which source words each target word read."""
    matplotlib = import_module("matplotlib", feature="plot_attention")

    if ax is None and path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = None
    if ax is None:
        figure, ax = plt.subplots(
            figsize=(1.0 + 0.45 * len(source_words), 1.0 + 0.35 * len(target_words))
        )
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_words)), source_words, rotation=60, ha="right")
    ax.set_yticks(range(len(target_words)), target_words)
    if title:
        ax.set_title(title, fontsize=9)
    if figure is not None:
        figure.tight_layout()
        if path is not None:
            figure.savefig(path, dpi=110)
            plt.close(figure)
    return ax


def plot_attention_maps(
    translator, sentences, path, beam_size=1, length_penalty_alpha=0.0, max_length=100, title=None
):
    """The attention heatmaps of `translator` translating each of `sentences`, side by side,
    as a PNG at `path`; returns `[{"source": words, "target": words}]`, one per sentence."""
    matplotlib = import_module("matplotlib", feature="plot_attention_maps")

    if not sentences:
        raise ValueError("plot_attention_maps: expected at least one sentence. Received: none")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = [
        translator.attention_map(s, beam_size, max_length, length_penalty_alpha) for s in sentences
    ]
    width = sum(1.2 + 0.42 * len(m[0]) for m in maps)
    height = 1.5 + 0.32 * max(len(m[1]) for m in maps)
    figure, axes = plt.subplots(1, len(maps), figsize=(width, height), squeeze=False)
    for ax, (source, target, weights) in zip(axes[0], maps, strict=True):
        plot_attention(source, target, weights, ax=ax)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return [{"source": m[0], "target": m[1]} for m in maps]


# --- BLEU ----------------------------------------------------------------------------------


def _check_corpus(function, hypotheses, *references):
    if any(len(hypotheses) != len(r) for r in references):
        raise ValueError(
            f"{function}: expected one reference per hypothesis. Received: "
            f"{len(hypotheses)} hypotheses, references {[len(r) for r in references]}"
        )


def tokenized_bleu(hypotheses, tokenized_references):
    """Corpus BLEU of the hypotheses (Moses tokens joined by spaces, as `translate` writes them)
    against Moses-tokenized references, both lowercased: the convention of Multi30K's
    published figures (its `tok/` files)."""
    sacrebleu = import_module("sacrebleu", feature="tokenized_bleu")

    _check_corpus("tokenized_bleu", hypotheses, tokenized_references)
    return sacrebleu.corpus_bleu(
        list(hypotheses), [list(tokenized_references)], tokenize="none", lowercase=True, force=True
    ).score  # force: tokenized on purpose (sacreBLEU would warn of "forgotten" detokenization)


def bleu_scores(hypotheses, references, tokenized_references):
    """(BLEU lowercased on the tokenized references (`tokenized_bleu`), sacreBLEU (13a, cased)
    on the raw `references`), the hypotheses detokenized by sacremoses for the second, each
    with its first letter capitalised."""
    sacrebleu = import_module("sacrebleu", feature="bleu_scores")
    sacremoses = import_module("sacremoses", feature="bleu_scores")

    _check_corpus("bleu_scores", hypotheses, references, tokenized_references)
    detokenizer = sacremoses.MosesDetokenizer(lang="en")
    cased = []
    for hypothesis in hypotheses:
        text = detokenizer.detokenize(hypothesis.split())
        cased.append(text[:1].upper() + text[1:])
    raw = sacrebleu.corpus_bleu(cased, [list(references)]).score
    return tokenized_bleu(hypotheses, tokenized_references), raw


def length_bucket(words, buckets=LENGTH_BUCKETS):
    """The label ("1-10", "21+") of the bucket of `buckets` that holds `words`, else None."""
    for low, high in buckets:
        if words >= low and (high is None or words <= high):
            return f"{low}-{high}" if high else f"{low}+"
    return None


def bleu_by_length(hypotheses, sources, tokenized_references, buckets=LENGTH_BUCKETS):
    """`tokenized_bleu` of each source-length bucket (source words, split at whitespace):
    `{bucket label: (BLEU, sentences)}`, in the order of `buckets`, empty buckets left out."""
    _check_corpus("bleu_by_length", hypotheses, sources, tokenized_references)
    rows = {}
    for i, source in enumerate(sources):
        rows.setdefault(length_bucket(len(source.split()), buckets), []).append(i)
    by_length = {}
    for bucket in [length_bucket(low, buckets) for low, _ in buckets]:
        if rows.get(bucket):
            chosen = rows[bucket]
            score = tokenized_bleu(
                [hypotheses[i] for i in chosen], [tokenized_references[i] for i in chosen]
            )
            by_length[bucket] = (score, len(chosen))
    return by_length


def plot_bleu_by_length(by_length, path, title=None):
    """Bars of `bleu_by_length`'s BLEU per bucket for each model of `by_length` (`{model name:
    bleu_by_length(...)}`, the buckets and counts of the first), as a PNG at `path`."""
    matplotlib = import_module("matplotlib", feature="plot_bleu_by_length")

    if not by_length:
        raise ValueError("plot_bleu_by_length: expected at least one model. Received: none")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(by_length)
    buckets = list(by_length[names[0]])
    figure, ax = plt.subplots(figsize=(6.4, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [by_length[name].get(b, (0.0, 0))[0] for b in buckets]
        ax.bar(np.arange(len(buckets)) + i * width, values, width, label=name)
    counts = [by_length[names[0]][b][1] for b in buckets]
    ax.set_xticks(
        np.arange(len(buckets)) + width * (len(names) - 1) / 2,
        [f"{b} words\n({n} sentences)" for b, n in zip(buckets, counts, strict=True)],
    )
    ax.set_ylabel("BLEU (lowercased, tokenized)")
    if title:
        ax.set_title(title)
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def decoding_grid(beam_sizes, length_penalties):
    """`(name, beam_size, alpha)` of greedy, then of beam search with each beam size and
    length-penalty alpha: the decodings to choose from on validation."""
    tried = [("greedy", 1, 0.0)]
    for size in beam_sizes:
        for alpha in length_penalties:
            _check_search(size, 1, alpha)
            tried.append((f"beam {size}, alpha {alpha:g}", size, float(alpha)))
    return tried
