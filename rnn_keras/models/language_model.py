"""`LanguageModel`: the guide's char-level language model (`CharRNN`), for any vocabulary,
with its serving: `generate` and `score` on strings, one `step` at a time, SavedModel
endpoints and the LiteRT one-step function."""

import keras
from keras import ops

from rnn_keras.layers.pooling import SplitDirections
from rnn_keras.models.language_model_preprocessor import LanguageModelPreprocessor
from rnn_keras.models.task import SteppedTask

__all__ = ["LanguageModel", "READ_CHUNK"]

# Steps read at a time by `score` and by `generate`'s prompt: bounds memory on long texts.
READ_CHUNK = 256


@keras.saving.register_keras_serializable(package="rnn_keras")
class LanguageModel(SteppedTask):
    """The guide's `CharRNN`, for any token vocabulary: the next token's logits at every step.

    On a unidirectional backbone the output is `(batch, time, vocabulary_size)`
    float32 logits: step t predicts token t + 1. On a one-layer bidirectional
    backbone (ELMo-style pretraining) the outputs are two: the forward
    direction's prediction of token t + 1 and the backward direction's of token
    t - 1, each from its own half of the features (a stacked bidirectional
    backbone would let each direction see the tokens it predicts, so it is
    refused). `examples` turns token batches into the matching training data.

    The serving methods (unidirectional backbones; TensorFlow) work on int32 ids
    and one packed state `(batch, S)`: every layer's states (`[h, c]` for an
    LSTM, `[h]` otherwise) concatenated along the last axis. They read with
    stateless copies of the recurrent layers that share their weights, so they
    can be called on a model trained with `stateful=True` at any batch size.

    Args:
        backbone: a `RecurrentBackbone` with `vocabulary_size`.
        vocabulary_size: how many token ids the model predicts (default: the
            backbone's); targets at or above it count as id 1, the
            out-of-vocabulary id of `keras.layers.TextVectorization`.
        dropout: rate of `Dropout` before the output layer.
        **kwargs: `name`, `dtype`, `trainable`.
    """

    preprocessor_cls = LanguageModelPreprocessor
    config_keys = ("vocabulary_size", "dropout")

    def __init__(self, backbone, vocabulary_size=None, dropout=0.0, preprocessor=None, **kwargs):
        self._check_backbone(backbone)
        if backbone.vocabulary_size is None:
            raise ValueError(
                "LanguageModel: the backbone must read token ids (built with "
                "`vocabulary_size`). Received: a backbone of float features "
                f"(input_dim={backbone.input_dim})"
            )
        if backbone.bidirectional and backbone.num_layers > 1:
            raise ValueError(
                "LanguageModel: a stacked bidirectional backbone lets each direction see the "
                "tokens it has to predict, through the layer below. Use num_layers=1 with "
                f"bidirectional=True. Received: num_layers={backbone.num_layers}"
            )
        vocabulary_size = vocabulary_size or backbone.vocabulary_size

        # === Layers ===
        self.backbone = backbone
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.next_token_head = keras.layers.Dense(vocabulary_size, name="next_token")
        self.previous_token_head = None
        if backbone.bidirectional:
            self.previous_token_head = keras.layers.Dense(vocabulary_size, name="previous_token")

        # === Functional model ===
        inputs = backbone.input
        x = backbone(inputs)
        if dropout:
            x = self.output_dropout(x)
        if backbone.bidirectional:
            forward, backward = SplitDirections(name="split_directions")(x)
            outputs = (self.next_token_head(forward), self.previous_token_head(backward))
        else:
            outputs = self.next_token_head(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.dropout = dropout
        self._set_preprocessor(preprocessor)

    def default_loss(self):
        """Sparse categorical cross-entropy on the logits (one per output)."""
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return [loss] * len(self.outputs) if len(self.outputs) > 1 else loss

    # -- strings in, strings out -------------------------------------------------------------

    def _require_preprocessor(self, method):
        if self.preprocessor is None:
            raise ValueError(
                f"LanguageModel.{method} works on strings, so it needs a preprocessor. Expected: "
                "LanguageModel(..., preprocessor=rnn_keras.LanguageModelPreprocessor(...)); "
                f"on token ids, use {method}_ids. Received: preprocessor=None"
            )

    def generate(self, prompt, max_length=100, temperature=1.0, seed=None):
        """Continues each prompt: a string gives a string, a list of strings a list.

        Each result starts with its prompt and is `max_length` tokens long in
        all (characters or words, the prompt included; a prompt at least that
        long comes back as it is). `temperature` 0 picks the most likely token
        (greedy); above 0 samples from the softmax of logits / temperature,
        reproducibly for an integer `seed` (None: a seed drawn from
        TensorFlow's global random state, which `keras.utils.set_random_seed` sets). An
        empty prompt starts after the preprocessor's start token. Runs in one
        compiled TensorFlow loop (batch of prompts at once).
        """
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("generate")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 0:
            raise ValueError(
                "LanguageModel.generate: `max_length` must be a non-negative integer. "
                f"Received: max_length={max_length!r}"
            )
        if not temperature >= 0:
            raise ValueError(
                "LanguageModel.generate: `temperature` must be >= 0 (0 is greedy). "
                f"Received: temperature={temperature!r}"
            )
        single = isinstance(prompt, str | bytes)
        prompts = [prompt] if single else list(prompt)
        prompts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in prompts]
        if not prompts:
            return []
        ids, lengths = self.preprocessor.tokenize(tf.constant(prompts))
        lengths = lengths.numpy()
        num_steps = max(0, max_length - int(lengths.min()))
        if not hasattr(self, "_generate_function"):
            signature = [
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([2], tf.int32),
            ]
            self._generate_function = tf.function(self.generate_ids, input_signature=signature)
        if seed is None:  # a fresh draw, from TensorFlow's global random state
            seed = int(tf.random.uniform([], 0, 2**31 - 1, tf.int32))
        new_ids = self._generate_function(
            ids,
            tf.constant(lengths),
            tf.constant(num_steps, tf.int32),
            tf.constant(float(temperature), tf.float32),
            self.preprocessor.start_id,
            tf.constant([int(seed), 0], tf.int32),
        ).numpy()
        separator = self.preprocessor.separator
        results = []
        for text, length, row in zip(prompts, lengths, new_ids, strict=True):
            keep = max(0, max_length - int(length))
            continuation = self.preprocessor.detokenize(row[None, :keep]).numpy()[0].decode()
            joiner = separator if text and continuation else ""
            results.append(text + joiner + continuation)
        return results[0] if single else np.array(results, dtype=object).tolist()

    def score(self, texts):
        """Nats per token of each text, read after the start token: a float for a string,
        a NumPy array for a list (NaN for an empty text)."""
        import numpy as np
        import tensorflow as tf

        self._require_preprocessor("score")
        single = isinstance(texts, str | bytes)
        batch = [texts] if single else list(texts)
        ids, lengths = self.preprocessor.tokenize(tf.constant(batch))
        start = tf.fill([len(batch), 1], self.preprocessor.start_id)
        nats, scored = self.score_ids(tf.concat([start, ids], axis=1), lengths + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_token = nats.numpy() / scored.numpy()
        return float(per_token[0]) if single else per_token

    # -- training data -----------------------------------------------------------------------

    def examples(self, token_batches):
        """`(ids, targets, sample_weights)` batches for `fit`, from a tf.data of `(ids, ...)`.

        Targets are the next tokens (and, bidirectional, the previous ones),
        with ids at or above `vocabulary_size` replaced by 1; positions with no
        token to predict (padding, the ends) get weight 0.
        """
        import tensorflow as tf

        vocabulary_size = self.vocabulary_size
        bidirectional = self.previous_token_head is not None

        def to_examples(ids, *_):
            capped = tf.where(ids >= vocabulary_size, tf.ones_like(ids), ids)
            padding = tf.zeros_like(capped[:, :1])
            targets = [tf.concat([capped[:, 1:], padding], axis=1)]
            if bidirectional:
                preceding = tf.concat([padding, capped[:, :-1]], axis=1)
                targets.append(tf.where(ids > 0, preceding, tf.zeros_like(preceding)))
            weights = [tf.cast(target > 0, tf.float32) for target in targets]
            if not bidirectional:
                return ids, targets[0], weights[0]
            return ids, tuple(targets), tuple(weights)

        return token_batches.map(to_examples, num_parallel_calls=tf.data.AUTOTUNE)

    # -- serving: state, step, score, generate -----------------------------------------------

    def _check_unidirectional(self):
        if self.backbone.bidirectional:
            raise ValueError(
                "LanguageModel: step, score and generate read left to right, so they need a "
                "unidirectional backbone. Received: bidirectional=True"
            )

    def _readers(self):
        """Stateless copies of the recurrent layers, sharing their weights and returning states."""
        self._check_unidirectional()
        return [
            layer.sharing_weights(stateful=False, return_sequences=True, return_state=True)
            for layer in self.backbone.recurrent_layers
        ]

    def step(self, ids, state):
        """One token per sequence: `(ids (batch,), state) -> (logits (batch, V), new state)`."""
        import tensorflow as tf

        self._check_unidirectional()
        # The embedding's table directly: the layer would attach a padding mask, which a
        # cell called on its own has no use for.
        embedding = self.backbone.token_embedding
        x = ops.cast(ops.take(embedding.embeddings, ids, axis=0), embedding.compute_dtype)
        x, state = self.cells_step(x, state)
        return tf.cast(self.next_token_head(x), tf.float32), state

    def read(self, ids, lengths, state, targets=None):
        """Reads padded ids `(batch, time)`, the first `lengths` of each row, from `state`.

        Returns `(state after each row's last real token, nats)`: `nats` sums the
        negative log-likelihood of `targets` (same shape as `ids`) over the real
        positions of each row, or is zeros without targets. Reads `READ_CHUNK`
        steps at a time.
        """
        import tensorflow as tf

        readers = self._readers()
        batch = tf.shape(ids)[0]
        total = tf.shape(ids)[1]
        num_chunks = (total + READ_CHUNK - 1) // READ_CHUNK
        padded = num_chunks * READ_CHUNK
        ids = tf.pad(ids, [[0, 0], [0, padded - total]])
        if targets is not None:
            targets = tf.pad(targets, [[0, 0], [0, padded - total]])
        mask = tf.range(padded)[None, :] < lengths[:, None]

        def body(k, state, nats):
            start, size = [0, k * READ_CHUNK], [batch, READ_CHUNK]
            chunk_mask = tf.slice(mask, start, size)
            x = self.backbone.token_embedding(tf.slice(ids, start, size))
            new_states = []
            for reader, states in zip(readers, self._unpack(state), strict=True):
                x, *states = reader(x, mask=chunk_mask, initial_state=list(states))
                new_states.append(states)
            state = self._pack(new_states)
            if targets is not None:
                logits = tf.cast(self.next_token_head(x), tf.float32)
                nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    tf.slice(targets, start, size), logits
                )
                nats += tf.reduce_sum(tf.where(chunk_mask, nll, 0.0), axis=1)
            return k + 1, state, nats

        _, state, nats = tf.while_loop(
            lambda k, *_: k < num_chunks,
            body,
            (0, state, tf.zeros([batch], tf.float32)),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, self.state_size]),
                tf.TensorShape([None]),
            ),
        )
        return state, nats

    def score_ids(self, ids, lengths):
        """Nats of each row's tokens 1..n-1 given the ones before: `(nats, scored)`, each (batch,).

        `ids` is `(batch, time)` int32, each row's first `lengths` ids real. Token
        t + 1 is scored from the state after reading tokens 0..t; the first token
        is the context, so a row of n tokens scores n - 1 (`scored`).
        """
        import tensorflow as tf

        scored = tf.maximum(lengths - 1, 0)
        _, nats = self.read(
            ids[:, :-1], scored, self.initial_state(tf.shape(ids)[0]), targets=ids[:, 1:]
        )
        return nats, scored

    def generate_ids(self, prompt_ids, lengths, num_steps, temperature, start_id, seed=None):
        """Continues each prompt by `num_steps` sampled ids, in-graph: `(batch, num_steps)` int32.

        `prompt_ids` is `(batch, time)` with `lengths` real ids per row; an empty
        prompt starts from `start_id` as the last token read. `temperature` 0
        picks the most likely id (greedy); above 0 samples from the softmax of
        logits / temperature, with `tf.random.stateless_categorical` when `seed`
        (int32 `[2]`) is given, else with TensorFlow's global random state.
        Id 0 (padding or out-of-vocabulary) is never produced.
        """
        import tensorflow as tf

        with tf.control_dependencies(
            [
                tf.debugging.assert_non_negative(
                    num_steps, message="generate: num_chars must be >= 0"
                ),
                tf.debugging.assert_non_negative(
                    temperature, message="generate: temperature must be >= 0 (0 is greedy)"
                ),
            ]
        ):
            num_steps = tf.identity(num_steps)
        batch = tf.shape(prompt_ids)[0]
        # Read all but the last prompt token as a sequence; the loop starts from the last.
        state, _ = self.read(prompt_ids, tf.maximum(lengths - 1, 0), self.initial_state(batch))
        last_index = tf.maximum(lengths - 1, 0)
        last = tf.gather(tf.pad(prompt_ids, [[0, 0], [0, 1]]), last_index, batch_dims=1)
        current = tf.where(lengths > 0, last, start_id)
        never_zero = tf.one_hot(0, self.vocabulary_size, on_value=-1e9)

        def body(i, current, state, generated):
            logits, state = self.step(current, state)
            logits += never_zero
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            scaled = logits / tf.maximum(temperature, 1e-6)
            if seed is None:
                sampled = tf.random.categorical(scaled, 1)
            else:
                step_seed = tf.random.experimental.stateless_fold_in(seed, i)
                sampled = tf.random.stateless_categorical(scaled, 1, step_seed)
            sampled = tf.cast(sampled[:, 0], tf.int32)
            following = tf.where(temperature > 0, sampled, greedy)
            return i + 1, following, state, generated.write(i, following)

        _, _, _, generated = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (0, current, state, tf.TensorArray(tf.int32, size=num_steps, element_shape=[None])),
        )
        # An empty TensorArray of unknown element shape cannot be stacked (num_steps = 0).
        return tf.cond(
            num_steps > 0,
            lambda: tf.transpose(generated.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )

    # -- serving: SavedModel endpoints and the LiteRT step ----------------------------------------

    def serving_endpoints(self):
        """The SavedModel's endpoints, on strings (invalid UTF-8 replaced):

        - `generate(prompt: string [None], num_chars: int32 [], temperature: float32 [])`
          -> string [None]: each prompt followed by `num_chars` generated tokens
          (temperature 0: greedy; an empty prompt starts after the start token);
        - `score(text: string [None])` -> `{"nats": float32 [None], "chars": int32 [None]}`:
          the negative log-likelihood of each text's tokens 2..n given those before, and n - 1;
        - `initial_state(batch_size: int32 [])` -> float32 `[batch_size, S]`;
        - `step(ids: int32 [None], state: float32 [None, S])` -> `{"logits", "state"}`;
        - `vocabulary()` -> string `[V]`: the token of each id.
        """
        import tensorflow as tf

        self._require_serving()
        preprocessor = self.preprocessor
        vocabulary = tf.constant(preprocessor.get_vocabulary())
        start_id = preprocessor.start_id

        def generate(prompt, num_chars, temperature):
            ids, lengths = preprocessor.tokenize(prompt)
            new_ids = self.generate_ids(ids, lengths, num_chars, temperature, start_id)
            joined = tf.strings.reduce_join(
                tf.gather(vocabulary, new_ids), axis=1, separator=preprocessor.separator
            )
            if preprocessor.separator:  # words: one separator between prompt and continuation
                joined = tf.where(
                    (tf.strings.length(prompt) > 0) & (num_chars > 0),
                    preprocessor.separator + joined,
                    joined,
                )
            return prompt + joined

        def score(text):
            ids, lengths = preprocessor.tokenize(text)
            nats, scored = self.score_ids(ids, lengths)
            return {"nats": nats, "chars": scored}

        def step(ids, state):
            logits, state = self.step(ids, state)
            return {"logits": logits, "state": state}

        return {
            "generate": (
                generate,
                [
                    tf.TensorSpec([None], tf.string, name="prompt"),
                    tf.TensorSpec([], tf.int32, name="num_chars"),
                    tf.TensorSpec([], tf.float32, name="temperature"),
                ],
            ),
            "score": (score, [tf.TensorSpec([None], tf.string, name="text")]),
            "initial_state": (self.initial_state, [tf.TensorSpec([], tf.int32, name="batch_size")]),
            "step": (
                step,
                [
                    tf.TensorSpec([None], tf.int32, name="ids"),
                    tf.TensorSpec([None, self.state_size], tf.float32, name="state"),
                ],
            ),
            "vocabulary": (lambda: vocabulary, []),
        }

    def litert_function(self, function, batch_size):
        """`to_litert(function="step")`: `step(ids: int32 [batch_size], state: float32
        [batch_size, S])` -> `{"logits", "state"}`, the state packed as `step` packs it."""
        import tensorflow as tf

        if function != "step":
            return None

        def step(ids, state):
            logits, state = self.step(ids, state)
            return {"logits": logits, "state": state}

        signature = [
            tf.TensorSpec([batch_size], tf.int32, name="ids"),
            tf.TensorSpec([batch_size, self.state_size], tf.float32, name="state"),
        ]
        return step, signature

    def litert_metadata(self, function):
        """Beside the "step" file: the vocabulary, start id, separator and state size that
        `rnn_keras.export.on_device.CharGenerator` reads."""
        if function != "step" or self.preprocessor is None:
            return super().litert_metadata(function)
        return {
            "kind": "language_model_step",
            "state_size": self.state_size,
            "start_id": int(self.preprocessor.start_id),
            "separator": self.preprocessor.separator,
            "vocabulary": self.preprocessor.get_vocabulary(),
        }
