"""Polyphonic music: a recurrent model of piano rolls, with independent or note-by-note output.

A piano roll is float32 `(time, keys)`, 1 where a key sounds during a time step
(88 keys: MIDI pitches 21-108). `PolyphonicModel` reads the frames before t
with a `RecurrentBackbone` and gives the logits of frame t's notes, in one of
two output models:

* `frame_output="independent"`: every key is an independent Bernoulli given
  the recurrent state, `p(v_t | v_<t) = prod_i sigmoid(+/- l_ti)` with
  `l_t = W h_t + b` (Boulanger-Lewandowski et al. 2012's RNN baseline; Bai et
  al. 2018's LSTM and TCN).
* `frame_output="note_by_note"`: `NoteByNote`, a NADE (Larochelle & Murray
  2011) whose biases come from the recurrent state, as in RNN-NADE
  (Boulanger-Lewandowski et al. 2012): the keys of a frame are modelled one
  after another, lowest first, each conditioned on the state and on the keys
  below it, so the model gives chords, not independent notes, their probability.

Both are trained on whole chorales with teacher forcing (`fit(rolls, rolls,
sample_weight=real steps)`; `rnn_keras.piano_rolls.roll_batches` makes such
batches), and scored in nats per time step: the sum over keys of the negative
log-likelihood of frame t given the frames before it (`frame_nll`).
"""

import keras
from keras import ops

from rnn_keras.models.task import SteppedTask

__all__ = [
    "FRAME_OUTPUTS",
    "FrameNLL",
    "NatsPerFrame",
    "NoteByNote",
    "PolyphonicModel",
    "PreviousFrames",
    "frame_nll",
]

FRAME_OUTPUTS = ("independent", "note_by_note")
# `generate` and the exported `generate` refuse more steps than this (about a minute on 2 cores;
# a chorale is 25-160 steps).
MAX_GENERATE_STEPS = 10_000
# Frames scored at a time by `score` (bounds the note-by-note output's (frames, keys, hidden)).
SCORE_CHUNK = 2048


@keras.saving.register_keras_serializable(package="rnn_keras")
def frame_nll(frames, logits):
    """Nats per frame, `sum_i BCE(v_ti, sigmoid(l_ti))`: `(batch, time, keys)` -> `(batch, time)`.

    Computed from the logits (`softplus(l) - v * l`), so it is exact for any logit.
    """
    logits = ops.cast(logits, "float32")
    frames = ops.cast(frames, "float32")
    return ops.sum(ops.softplus(logits) - frames * logits, axis=-1)


@keras.saving.register_keras_serializable(package="rnn_keras")
class FrameNLL(keras.losses.Loss):
    """`frame_nll` as a loss; by default the sum over real steps divided by their count
    (the sample weights'), so a batch's loss is its nats per real step."""

    def __init__(self, name="frame_nll", reduction="mean_with_sample_weight", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return frame_nll(y_true, y_pred)


@keras.saving.register_keras_serializable(package="rnn_keras")
class NatsPerFrame(keras.metrics.Metric):
    """Total `frame_nll` over total weight: nats per real time step when the sample
    weights `(batch, time)` are 1 on real steps and 0 on padding (exactly, across
    batches of any length; Keras's mean metrics average per sequence first)."""

    def __init__(self, name="nats_per_frame", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nats = frame_nll(y_true, y_pred)
        weights = ops.ones_like(nats)
        if sample_weight is not None:
            weights = ops.cast(sample_weight, nats.dtype)
        self.total.assign_add(ops.sum(nats * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)


@keras.saving.register_keras_serializable(package="rnn_keras")
class PreviousFrames(keras.layers.Layer):
    """`x_t = v_{t-1}`, with a silent frame before the first: the inputs that predict each frame."""

    def call(self, frames):
        return ops.pad(frames, [[0, 0], [1, 0], [0, 0]])[:, :-1]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="rnn_keras")
class NoteByNote(keras.layers.Layer):
    """A NADE over the keys of each frame, conditioned on a context vector per frame.

    Called on `[context (batch, time, D), frames (batch, time, K)]`, returns the
    logits `(batch, time, K)` of every key given the context and the keys below
    it in the same frame (teacher forcing: the true keys below):

        b_t = B h_t + b0,          c_t = C h_t + c0              (context -> biases)
        a_ti = c_t + sum_{j<i} v_tj W_j                          (W: K x H)
        l_ti = b_ti + V_i . sigmoid(a_ti)                        (V: K x H)
        p(v_t | h_t) = prod_i sigmoid(l_ti)^v_ti (1 - sigmoid(l_ti))^(1 - v_ti)

    so `p` sums to one over all 2^K chords. Memory is `(batch, time, K, H)`.
    `sample` draws (or, at temperature 0, picks greedily) a frame key by key.

    Args:
        num_keys: K.
        hidden_units: H, the NADE's hidden width.
    """

    def __init__(self, num_keys=88, hidden_units=128, **kwargs):
        super().__init__(**kwargs)
        self.num_keys = num_keys
        self.hidden_units = hidden_units
        self.visible_bias = keras.layers.Dense(num_keys, name="visible_bias")
        self.hidden_bias = keras.layers.Dense(hidden_units, name="hidden_bias")

    def build(self, input_shape):
        context_shape, _ = input_shape
        self.visible_bias.build(context_shape)
        self.hidden_bias.build(context_shape)
        shape = (self.num_keys, self.hidden_units)
        self.input_weights = self.add_weight(shape=shape, initializer="glorot_uniform", name="W")
        self.output_weights = self.add_weight(shape=shape, initializer="glorot_uniform", name="V")

    def call(self, inputs):
        context, frames = inputs
        frames = ops.cast(frames, self.compute_dtype)
        contributions = frames[..., :, None] * self.input_weights  # (..., K, H)
        below = ops.cumsum(contributions, axis=-2) - contributions
        hidden = ops.sigmoid(self.hidden_bias(context)[..., None, :] + below)
        return self.visible_bias(context) + ops.sum(hidden * self.output_weights, axis=-1)

    def sample(self, context, temperature, seed):
        """One frame per row of `context (N, D)`, key by key: `(N, K)` float32 of 0/1.

        Temperature 0 turns a key on when its logit is positive (given the keys
        chosen below it); above 0 it is on with probability
        `sigmoid(logit / temperature)`, drawn with `seed` (int32 `[2]`).
        """
        import tensorflow as tf

        visible = tf.cast(self.visible_bias(context), tf.float32)
        accumulated = tf.cast(self.hidden_bias(context), tf.float32)
        weights_in = tf.cast(self.input_weights, tf.float32)
        weights_out = tf.cast(self.output_weights, tf.float32)
        notes = []
        for key in range(self.num_keys):
            logit = visible[:, key] + tf.linalg.matvec(tf.sigmoid(accumulated), weights_out[key])
            note = _decide(logit, temperature, tf.random.experimental.stateless_fold_in(seed, key))
            accumulated += note[:, None] * weights_in[key]
            notes.append(note)
        return tf.stack(notes, axis=1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[1][:-1], self.num_keys)

    def get_config(self):
        return {
            **super().get_config(),
            "num_keys": self.num_keys,
            "hidden_units": self.hidden_units,
        }


def _decide(logits, temperature, seed):
    """Notes on/off from logits: greedy (`logits > 0`) at temperature 0, else sampled."""
    import tensorflow as tf

    uniform = tf.random.stateless_uniform(tf.shape(logits), seed)
    sampled = uniform < tf.sigmoid(logits / tf.maximum(temperature, 1e-6))
    return tf.cast(tf.where(temperature > 0, sampled, logits > 0), tf.float32)


@keras.saving.register_keras_serializable(package="rnn_keras")
class PolyphonicModel(SteppedTask):
    """A model of piano rolls: the logits of frame t's keys from the frames before it.

    Input: rolls `(batch, time, K)` (0/1). Output: float32 logits `(batch,
    time, K)`, step t's from frames 0..t-1 (`PreviousFrames`, a silent frame
    before the first) and, with `frame_output="note_by_note"`, from the keys
    below each key in frame t (see the module docstring). Train with `fit(rolls,
    rolls, sample_weight=steps)`; the default loss and the weighted metric
    `nats_per_frame` are `frame_nll` per real step, the published convention.

    `score(rolls)` gives nats per time step; `generate(num_steps, ...)` new
    frames, one at a time through `initial_state` and `cells_step` (TensorFlow).

    Args:
        backbone: a unidirectional `RecurrentBackbone` with `input_dim=K`.
        frame_output: "independent" or "note_by_note".
        hidden_units: the `NoteByNote` hidden width (note_by_note only).
        dropout: rate of `Dropout` on the recurrent output, before the output model.
        **kwargs: `name`, `dtype`, `trainable`.
    """

    config_keys = ("frame_output", "hidden_units", "dropout")

    def __init__(
        self, backbone, frame_output="independent", hidden_units=128, dropout=0.0, **kwargs
    ):
        self._check_backbone(backbone)
        if backbone.input_dim is None or backbone.bidirectional:
            raise ValueError(
                "PolyphonicModel: the backbone must read frames (built with `input_dim`, the "
                "number of keys) left to right (bidirectional=False). Received: "
                f"input_dim={backbone.input_dim!r}, bidirectional={backbone.bidirectional!r}"
            )
        if frame_output not in FRAME_OUTPUTS:
            raise ValueError(
                f"PolyphonicModel: `frame_output` must be one of {FRAME_OUTPUTS}. "
                f"Received: frame_output={frame_output!r}"
            )
        kwargs.pop("preprocessor", None)  # always None: the inputs are rolls
        num_keys = backbone.input_dim

        # === Layers ===
        self.backbone = backbone
        self.previous_frames = PreviousFrames(name="previous_frames")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        if frame_output == "independent":
            self.frame_head = keras.layers.Dense(num_keys, name="independent_notes")
        else:
            self.frame_head = NoteByNote(num_keys, hidden_units, name="note_by_note")

        # === Functional model ===
        rolls = keras.Input((None, num_keys), name="rolls")
        x = backbone(self.previous_frames(rolls))
        if dropout:
            x = self.output_dropout(x)
        logits = self.frame_head(x if frame_output == "independent" else [x, rolls])
        super().__init__(inputs=rolls, outputs=ops.cast(logits, "float32"), **kwargs)

        # === Config ===
        self.frame_output = frame_output
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.num_keys = num_keys
        self._set_preprocessor(None)

    def default_loss(self):
        """`frame_nll` averaged over the sample weights: nats per real step of the batch."""
        return FrameNLL()

    def compile(self, optimizer="auto", loss="auto", metrics=None, **kwargs):
        """`Task.compile`; `weighted_metrics` defaults to `[NatsPerFrame()]` (Keras gives
        sample weights to weighted metrics only)."""
        kwargs.setdefault("weighted_metrics", [NatsPerFrame()])
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["preprocessor"]
        return config

    def has_serving_endpoints(self):
        return True  # piano rolls in: no preprocessor

    def serving_endpoints(self):
        """The SavedModel's endpoints:

        - `score(rolls: float32 [None, None, K])` -> float32 `[None]`: nats per time
          step of each roll (all rows as long as the array; NaN for 0 steps); rolls
          with another key count or values other than 0 and 1 (NaN included) are
          refused with an InvalidArgumentError that says so;
        - `generate(num_steps: int32 [], temperature: float32 [], seed: int32 [])` ->
          float32 `[num_steps, K]`: new frames from silence (temperature 0 greedy),
          the same for the same seed; num_steps outside [0, MAX_GENERATE_STEPS] or a
          negative or non-finite temperature is refused.
        """
        import tensorflow as tf

        model = self
        keys = model.num_keys

        def score(rolls):
            checks = [
                tf.debugging.assert_equal(
                    tf.shape(rolls)[2], keys, message=f"score: rolls must be [batch, steps, {keys}]"
                ),
                tf.debugging.assert_equal(
                    tf.reduce_all((rolls == 0.0) | (rolls == 1.0)),
                    True,
                    message="score: a roll holds 0 (silent) or 1 (sounding) per key and step",
                ),
            ]
            with tf.control_dependencies(checks):
                rolls = tf.ensure_shape(tf.identity(rolls), [None, None, keys])
            nats = model.frame_nats(rolls)
            return tf.reduce_sum(nats, axis=1) / tf.cast(tf.shape(rolls)[1], tf.float32)

        def generate(num_steps, temperature, seed):
            checks = [
                tf.debugging.assert_non_negative(num_steps, message="generate: num_steps < 0"),
                tf.debugging.assert_less_equal(
                    num_steps,
                    MAX_GENERATE_STEPS,
                    message=f"generate: num_steps above the limit of {MAX_GENERATE_STEPS}",
                ),
                tf.debugging.assert_equal(
                    tf.math.is_finite(temperature) & (temperature >= 0.0),
                    True,
                    message="generate: temperature must be finite and >= 0 (0 is greedy)",
                ),
            ]
            with tf.control_dependencies(checks):
                num_steps = tf.identity(num_steps)
            prompt = tf.zeros([0, keys])
            return model.generate_frames(prompt, num_steps, temperature, tf.stack([seed, 0]))

        return {
            "score": (score, [tf.TensorSpec([None, None, None], tf.float32, "rolls")]),
            "generate": (
                generate,
                [
                    tf.TensorSpec([], tf.int32, name="num_steps"),
                    tf.TensorSpec([], tf.float32, name="temperature"),
                    tf.TensorSpec([], tf.int32, name="seed"),
                ],
            ),
        }

    # -- inference: logits, frames, scores ----------------------------------------------------

    def frame_logits(self, context, frames):
        """The output model on recurrent outputs `context (N, D)` and frames `(N, K)`."""
        if self.frame_output == "independent":
            return ops.cast(self.frame_head(context), "float32")
        return ops.cast(self.frame_head([context, frames]), "float32")

    def decide(self, context, temperature, seed):
        """A frame per row of `context (N, D)`: sampled, or greedy at temperature 0."""
        if self.frame_output == "note_by_note":
            return self.frame_head.sample(context, temperature, seed)
        return _decide(self.frame_logits(context, None), temperature, seed)

    def frame_nats(self, rolls):
        """Nats of every frame given those before it, `(batch, time)` float32 (TensorFlow).

        Runs the backbone over the whole rolls, then the output model
        `SCORE_CHUNK` frames at a time, so long rolls fit in memory.
        """
        import tensorflow as tf

        rolls = tf.cast(rolls, tf.float32)
        shape = tf.shape(rolls)
        # A recurrent layer cannot run zero steps or rows: those get no nats.
        return tf.cond(
            (shape[0] > 0) & (shape[1] > 0),
            lambda: self._frame_nats(rolls),
            lambda: tf.zeros(shape[:2], tf.float32),
        )

    def _context(self, rolls):
        """The recurrent outputs that predict each frame of `rolls`, `(batch, time, D)`."""
        return self.backbone(self.previous_frames(rolls), training=False)

    def _frame_nats(self, rolls):
        import tensorflow as tf

        context = self._context(rolls)
        shape = tf.shape(rolls)
        count = shape[0] * shape[1]
        padding = [[0, (-count) % SCORE_CHUNK], [0, 0]]
        chunked_context = tf.reshape(
            tf.pad(tf.reshape(context, [-1, context.shape[-1]]), padding),
            [-1, SCORE_CHUNK, context.shape[-1]],
        )
        chunked_frames = tf.reshape(
            tf.pad(tf.reshape(rolls, [-1, self.num_keys]), padding),
            [-1, SCORE_CHUNK, self.num_keys],
        )

        def chunk_nats(chunk):
            context, frames = chunk
            return frame_nll(frames, self.frame_logits(context, frames))

        nats = tf.map_fn(
            chunk_nats,
            (chunked_context, chunked_frames),
            fn_output_signature=tf.TensorSpec([SCORE_CHUNK], tf.float32),
        )
        return tf.reshape(tf.reshape(nats, [-1])[:count], shape[:2])

    def predicted_frames(self, rolls):
        """The most likely frame at every step given the true frames before it (greedy key
        by key for note_by_note; threshold 0.5 for independent notes), `(batch, time, K)`."""
        import tensorflow as tf

        rolls = tf.cast(rolls, tf.float32)
        context = self._context(rolls)
        flat = tf.reshape(context, [-1, context.shape[-1]])
        frames = self.decide(flat, tf.constant(0.0), tf.constant([0, 0]))
        return tf.reshape(frames, tf.shape(rolls))

    def score(self, rolls):
        """Nats per time step of each roll (a float for one `(time, K)` array, an array for a
        list of them; NaN for an empty roll): the sum over keys of the negative
        log-likelihood of each frame given the frames before it, averaged over its steps."""
        import numpy as np

        single = _is_one_roll(rolls)
        checked = [check_roll(roll, self.num_keys, "PolyphonicModel.score") for roll in
                   ([rolls] if single else list(rolls))]  # fmt: skip
        scores = []
        for roll in checked:
            if len(roll) == 0:
                scores.append(float("nan"))
                continue
            scores.append(float(np.mean(self._frame_nats_function()(roll[None]).numpy())))
        return scores[0] if single else np.array(scores, dtype="float32")

    def _frame_nats_function(self):
        import tensorflow as tf

        if not hasattr(self, "_compiled_frame_nats"):
            spec = tf.TensorSpec([None, None, self.num_keys], tf.float32)
            self._compiled_frame_nats = tf.function(self.frame_nats, input_signature=[spec])
        return self._compiled_frame_nats

    # -- generation ---------------------------------------------------------------------------

    def generate(self, num_steps, temperature=1.0, prompt=None, seed=None):
        """`num_steps` new frames, float32 `(num_steps, K)`, after the frames of `prompt` (a
        `(time, K)` roll, or None: from silence). Temperature 0 is greedy; above 0 each key
        is drawn with probability `sigmoid(logit / temperature)`, reproducibly for an
        integer `seed` (None: drawn from TensorFlow's global random state)."""
        import numpy as np
        import tensorflow as tf

        if not isinstance(num_steps, int | np.integer) or isinstance(num_steps, bool):
            raise ValueError(
                "PolyphonicModel.generate: `num_steps` must be an integer. "
                f"Received: num_steps={num_steps!r}"
            )
        if not 0 <= num_steps <= MAX_GENERATE_STEPS:
            raise ValueError(
                f"PolyphonicModel.generate: `num_steps` must be in [0, {MAX_GENERATE_STEPS}]. "
                f"Received: num_steps={num_steps}"
            )
        if not temperature >= 0:
            raise ValueError(
                "PolyphonicModel.generate: `temperature` must be >= 0 (0 is greedy). "
                f"Received: temperature={temperature!r}"
            )
        prompt = np.zeros([0, self.num_keys], "float32") if prompt is None else prompt
        prompt = check_roll(prompt, self.num_keys, "PolyphonicModel.generate(prompt=...)")
        if seed is None:
            seed = int(tf.random.uniform([], 0, 2**31 - 1, tf.int32))
        if not hasattr(self, "_compiled_generate"):
            self._compiled_generate = tf.function(
                self.generate_frames,
                input_signature=[
                    tf.TensorSpec([None, self.num_keys], tf.float32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.float32),
                    tf.TensorSpec([2], tf.int32),
                ],
            )
        frames = self._compiled_generate(
            tf.constant(prompt), num_steps, float(temperature), tf.constant([int(seed), 0])
        )
        return frames.numpy()

    def generate_frames(self, prompt, num_steps, temperature, seed):
        """In-graph generation: `num_steps` frames `(num_steps, K)` after `prompt (P, K)`."""
        import tensorflow as tf

        state = self.initial_state(1)
        previous = tf.zeros([1, self.num_keys])

        def read(i, previous, state):
            _, state = self.cells_step(previous, state)
            return i + 1, prompt[i][None], state

        _, previous, state = tf.while_loop(
            lambda i, *_: i < tf.shape(prompt)[0], read, (0, previous, state)
        )

        def body(i, previous, state, frames):
            context, state = self.cells_step(previous, state)
            step_seed = tf.random.experimental.stateless_fold_in(seed, i)
            frame = self.decide(context, temperature, step_seed)
            return i + 1, frame, state, frames.write(i, frame[0])

        _, _, _, frames = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (0, previous, state, tf.TensorArray(tf.float32, size=num_steps,
                                                element_shape=[self.num_keys])),
        )  # fmt: skip
        return tf.reshape(frames.stack(), [num_steps, self.num_keys])


def _is_one_roll(rolls):
    import numpy as np

    return isinstance(rolls, np.ndarray) and rolls.ndim == 2


def check_roll(roll, num_keys, where):
    """`roll` as float32 `(time, num_keys)` of 0/1, or a ValueError naming `where`."""
    import numpy as np

    array = np.asarray(roll, dtype="float32")
    if array.ndim != 2 or array.shape[1] != num_keys:
        raise ValueError(
            f"{where}: a roll must be (time, {num_keys}) (one column per key). "
            f"Received: shape {array.shape}"
        )
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(
            f"{where}: a roll holds 0 (silent) or 1 (sounding) per key and step. Received: "
            f"values such as {np.unique(array[~np.isin(array, (0.0, 1.0))])[:3].tolist()}"
        )
    return array
