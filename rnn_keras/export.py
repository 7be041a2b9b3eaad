"""Tasks exported as TensorFlow SavedModels that serve raw inputs with no code of ours,
and `.keras` files without optimizer state.

`export_task(task, path)` is what `task.export(path)` calls for a task with a
preprocessor; the SavedModel loads with `tf.saved_model.load(path)` in a
process that has neither rnn_keras nor Keras. Its endpoints, by preprocessor:

* `TextClassifierPreprocessor` (a `SequenceClassifier` or `SequenceRegressor`
  on text): `serve(text: tf.string [None])` -> float32 `[None, outputs]`, or
  `[None]` when the task has one output (a binary classifier's probability).
* `FeatureWindowPreprocessor`: `serve(**windows)`, one named input
  `[None, time]` per column (float32 numeric, int32 periodic, string
  categorical, unused columns with their dtype) -> float32 `[None, outputs]`.
* `LanguageModelPreprocessor` (a `LanguageModel`), on strings (invalid UTF-8
  replaced):
  - `generate(prompt: string [None], num_chars: int32 [], temperature: float32 [])`
    -> string [None]: each prompt followed by `num_chars` generated tokens
    (temperature 0: greedy; an empty prompt starts after the start token);
  - `score(text: string [None])` -> `{"nats": float32 [None], "chars": int32 [None]}`:
    the negative log-likelihood of each text's tokens 2..n given those
    before, and n - 1;
  - `initial_state(batch_size: int32 [])` -> float32 `[batch_size, S]`;
  - `step(ids: int32 [None], state: float32 [None, S])` -> `{"logits", "state"}`;
  - `vocabulary()` -> string `[V]`: the token of each id.

A `PolyphonicModel` (no preprocessor: its inputs are piano rolls) gets:
  - `score(rolls: float32 [None, None, K])` -> float32 `[None]`: nats per time
    step of each roll (all rows as long as the array; NaN for 0 steps); rolls
    with another key count or values other than 0 and 1 (NaN included) are
    refused with an InvalidArgumentError that says so;
  - `generate(num_steps: int32 [], temperature: float32 [], seed: int32 [])` ->
    float32 `[num_steps, K]`: new frames from silence (temperature 0 greedy),
    the same for the same seed; num_steps outside [0, MAX_GENERATE_STEPS] or a
    negative or non-finite temperature is refused.
"""

import keras

__all__ = ["export_task", "save_model"]


def export_task(task, path):
    """Writes `task`'s serving SavedModel to `path` (see the module docstring)."""
    from rnn_keras import music, preprocessors

    preprocessor = task.preprocessor
    archive = keras.export.ExportArchive()
    archive.track(task)
    if isinstance(task, music.PolyphonicModel):
        _add_roll_endpoints(archive, task)
    elif isinstance(preprocessor, preprocessors.LanguageModelPreprocessor):
        _add_generator_endpoints(archive, task, preprocessor)
    elif isinstance(preprocessor, preprocessors.TextClassifierPreprocessor):
        _add_text_endpoint(archive, task, preprocessor)
    elif isinstance(preprocessor, preprocessors.FeatureWindowPreprocessor):
        _add_window_endpoint(archive, task, preprocessor)
    else:
        raise ValueError(
            f"export_task: no serving endpoints for a {type(task).__name__} with preprocessor "
            f"{preprocessor!r}. Expected: a TextClassifierPreprocessor, FeatureWindowPreprocessor "
            "or LanguageModelPreprocessor"
        )
    archive.write_out(str(path), verbose=False)


def _outputs(task, x):
    """The task's output as float32, `[batch]` for a task with one output."""
    import tensorflow as tf

    outputs = tf.cast(task(x, training=False), tf.float32)
    return outputs[:, 0] if outputs.shape[-1] == 1 else outputs


def _add_text_endpoint(archive, task, preprocessor):
    import tensorflow as tf

    archive.track(preprocessor)
    archive.add_endpoint(
        "serve",
        lambda text: _outputs(task, preprocessor.token_ids(text)),
        input_signature=[tf.TensorSpec([None], tf.string, name="text")],
    )


def _add_window_endpoint(archive, task, preprocessor):
    import inspect

    import tensorflow as tf

    archive.track(preprocessor)
    names = list(preprocessor.input_dtypes)

    def serve(*columns):
        return _outputs(task, preprocessor(dict(zip(names, columns, strict=True))))

    # One named argument per column, so the endpoint is called as serve(pm25=..., hour=...).
    serve.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    )

    signature = [
        tf.TensorSpec([None, preprocessor.sequence_length], dtype, name=name)
        for name, dtype in preprocessor.input_dtypes.items()
    ]
    archive.add_endpoint("serve", serve, input_signature=signature)


def _add_generator_endpoints(archive, language_model, preprocessor):
    import tensorflow as tf

    archive.track(preprocessor)
    vocabulary = tf.constant(preprocessor.get_vocabulary())
    start_id = preprocessor.start_id

    def generate(prompt, num_chars, temperature):
        ids, lengths = preprocessor.tokenize(prompt)
        new_ids = language_model.generate_ids(ids, lengths, num_chars, temperature, start_id)
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
        nats, scored = language_model.score_ids(ids, lengths)
        return {"nats": nats, "chars": scored}

    def step(ids, state):
        logits, state = language_model.step(ids, state)
        return {"logits": logits, "state": state}

    archive.add_endpoint(
        "generate",
        generate,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="num_chars"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ],
    )
    archive.add_endpoint("score", score, input_signature=[tf.TensorSpec([None], tf.string, "text")])
    archive.add_endpoint(
        "initial_state",
        language_model.initial_state,
        input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")],
    )
    archive.add_endpoint(
        "step",
        step,
        input_signature=[
            tf.TensorSpec([None], tf.int32, name="ids"),
            tf.TensorSpec([None, language_model.state_size], tf.float32, name="state"),
        ],
    )
    archive.add_endpoint("vocabulary", lambda: vocabulary, input_signature=[])


def _add_roll_endpoints(archive, model):
    import tensorflow as tf

    from rnn_keras.music import MAX_GENERATE_STEPS

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

    archive.add_endpoint(
        "score", score, input_signature=[tf.TensorSpec([None, None, None], tf.float32, "rolls")]
    )
    archive.add_endpoint(
        "generate",
        generate,
        input_signature=[
            tf.TensorSpec([], tf.int32, name="num_steps"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ],
    )


def save_model(model, path):
    """`model.save(path)` without the optimizer: weights, config and preprocessing only.

    What a shipped model needs: the loaded model predicts as it is; to train it
    further, compile it again (`task.compile()` picks the task's defaults). An
    Adam state would triple the file (first and second moments of every weight).
    """
    state = getattr(model, "compiled", False), getattr(model, "optimizer", None)
    model.compiled, model.optimizer = False, None
    try:
        model.save(path)
    finally:
        model.compiled, model.optimizer = state
