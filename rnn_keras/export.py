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

A `TextEnsemble` (binary text classifiers averaged in logit space) gets
  `serve(text: tf.string [None])` -> float32 `[None]`, the ensemble's
  probability, and `serve_members(text)` -> `{member name: float32 [None]}`,
  each member's own.

A `SpeechRecognizer` (no preprocessor: its inputs are raw audio) gets
  `transcribe(waveforms: float32 [None, None], lengths: int32 [None])` -> string
  `[None]`: greedy CTC transcripts, tokens joined by the task's separator (the
  digit words with spaces for `experiments/speech.py`). Row i is read up to
  `lengths[i]` samples (what follows is ignored); amplitude does not matter (the
  features are normalised per clip, so int16-range values give the transcript of
  the same clip in [-1, 1]). A zero-length clip gives "", a zero-size batch `[0]`
  strings. Refused with an InvalidArgumentError that says which: NaN or Inf
  among a clip's samples, negative lengths, lengths longer than the array, or
  not one length per row.

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

import json

import keras

__all__ = ["export_task", "save_model", "to_litert"]


def export_task(task, path):
    """Writes `task`'s serving SavedModel to `path` (see the module docstring)."""
    from rnn_keras import ensembles, music, preprocessors, speech

    preprocessor = getattr(task, "preprocessor", None)
    archive = keras.export.ExportArchive()
    if isinstance(task, ensembles.TextEnsemble):
        _add_ensemble_endpoints(archive, task)  # tracks the members (the ensemble has no graph)
        archive.write_out(str(path), verbose=False)
        return
    archive.track(task)
    if isinstance(task, music.PolyphonicModel):
        _add_roll_endpoints(archive, task)
    elif isinstance(task, speech.SpeechRecognizer):
        _add_speech_endpoint(archive, task)
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


def _add_ensemble_endpoints(archive, ensemble):
    import tensorflow as tf

    for member in ensemble.members:
        archive.track(member)
        if getattr(member, "preprocessor", None) is not None:
            archive.track(member.preprocessor)
    signature = [tf.TensorSpec([None], tf.string, name="text")]
    archive.add_endpoint(
        "serve", lambda text: ensemble(text, training=False)[:, 0], input_signature=signature
    )

    def serve_members(text):
        return {member.name: ensemble._member_output(member, text) for member in ensemble.members}

    archive.add_endpoint("serve_members", serve_members, input_signature=signature)


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


def _add_speech_endpoint(archive, recognizer):
    import tensorflow as tf

    from rnn_keras.speech import _greedy_ids

    tokens = tf.constant(["", *recognizer.vocabulary])  # id 0 is the blank
    shortest = recognizer.front_end.frame_length  # samples the transform needs in a row

    def transcribe(waveforms, lengths):
        rows, samples = tf.shape(waveforms)[0], tf.shape(waveforms)[1]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(lengths)[0], rows,
                message="transcribe: expected one length per waveform row",
            ),
            tf.debugging.assert_non_negative(
                lengths, message="transcribe: lengths must be >= 0"
            ),
            tf.debugging.assert_less_equal(
                lengths, samples,
                message="transcribe: a length is longer than the waveforms array (samples)",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(checks):
            inside = tf.range(samples)[None, :] < lengths[:, None]
            waveforms = tf.where(inside, waveforms, 0.0)  # what follows a clip is ignored
        finite = tf.debugging.assert_all_finite(
            waveforms, "transcribe: NaN or Inf among a clip's samples"
        )
        with tf.control_dependencies([finite]):
            waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(shortest - samples, 0)]])

        def run():
            logits = recognizer({"waveforms": waveforms, "lengths": lengths}, training=False)
            ids = _greedy_ids(logits)
            words = tf.gather(tokens, tf.ragged.boolean_mask(ids, ids > 0))
            text = tf.strings.reduce_join(words, axis=1, separator=recognizer.separator)
            return tf.where(lengths > 0, text, "")

        return tf.cond(rows > 0, run, lambda: tf.zeros([0], tf.string))

    archive.add_endpoint(
        "transcribe",
        transcribe,
        input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveforms"),
            tf.TensorSpec([None], tf.int32, name="lengths"),
        ],
    )


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
    models = [model, *getattr(model, "members", ())]  # an ensemble's members have their own
    states = [(m, getattr(m, "compiled", False), getattr(m, "optimizer", None)) for m in models]
    for m, _, _ in states:
        m.compiled, m.optimizer = False, None
    try:
        model.save(path)
    finally:
        for m, compiled, optimizer in states:
            m.compiled, m.optimizer = compiled, optimizer


# -- LiteRT (TensorFlow Lite) -------------------------------------------------------------

LITERT_QUANTIZATIONS = (None, "dynamic", "float16")
LITERT_FUNCTIONS = ("call", "step")


def to_litert(
    model, path, quantize=None, *, function="call", fuse_lstm=True, unroll="auto", batch_size=1
):
    """Writes `model` as a LiteRT (TensorFlow Lite) flatbuffer with builtin ops only.

    Every `rnn_keras.LSTM` and `keras.layers.LSTM` (forward, `go_backwards`,
    stacked, inside `keras.layers.Bidirectional`) becomes one fused
    `UNIDIRECTIONAL_SEQUENCE_LSTM` op: the layer is replaced, for the
    conversion, by a function that carries the converter's composite-op
    contract (`api_implements="lstm_..."` with Keras's weight layout, which
    rnn_keras shares). A layer with no fused op (`GRU`, `SimpleRNN`, or an LSTM
    with `fuse_lstm=False`) converts as `keras.layers.RNN`'s loop, a `WHILE`
    op, or, for a fixed number of time steps, unrolled: one copy of the cell
    per step. Neither is faster everywhere (on a 2-core Xeon, 64 units: an
    unrolled SimpleRNN is 1.3-1.5x faster up to 50 steps and no faster from
    100, an unrolled GRU no faster at 20 steps and 1.5x slower from 50;
    docs/litert.md), so
    `unroll="auto"` converts both and keeps the one the interpreter runs
    faster on this machine. Layers that are not recurrent convert as they are.
    No Flex (Select TF) or custom op is allowed: a model that needs one is
    refused with the converter's list of the ops.

    The signature takes the model's inputs with a static batch of `batch_size`
    (the fused op's states have a static shape) and keeps their other
    dimensions: a model of `(batch, None)` token ids takes any length (resize
    the interpreter's input). **Masks are not exported**: a masked model (an
    `Embedding(mask_zero=True)`, `keras.layers.Masking`) runs one sequence at a
    time at its true length, batch 1 and no padding, where its mask is all
    true and has no effect; so a fused LSTM that receives a mask requires
    `batch_size=1`.

    **A fused LSTM keeps its state between calls**: LiteRT's sequence-LSTM op
    holds its hidden and cell states in variable tensors of the interpreter,
    zeros at first and updated by every `invoke()` (the converter accepts no
    other initial state). Call `interpreter.reset_all_variables()` before each
    independent sequence (`rnn_keras.on_device.ReviewClassifier` does); or feed
    one sequence in chunks, without resetting, to stream it.

    With `function="step"`, a `LanguageModel` exports its one-step function
    instead (the form streaming runtimes need, states as explicit inputs and
    outputs): `step(ids: int32 [batch_size], state: float32 [batch_size, S])`
    -> `{"logits": [batch_size, V], "state": [batch_size, S]}`, the state
    packed as `LanguageModel.step` packs it (start from zeros). One step has no
    loop, so its cells become plain ops (matmuls, gates).

    A task's preprocessing is not in the file (string ops are not builtins);
    what a device needs of it is written beside it, as JSON (`path` with
    `.json`), and `rnn_keras.on_device` reads it: a language model's
    vocabulary, start id and state size (`CharGenerator`); a review
    classifier's vocabulary, length caps and tokenizing rule, when it is the
    default `ReviewStandardizer` rule (`ReviewClassifier`); a feature-window
    model's preprocessing config and normalisation statistics.

    Args:
        model: a Functional or Sequential `keras.Model` (a task model is
            exported without its preprocessor: on token ids or features).
        path: the `.tflite` file to write.
        quantize: None (float32), "dynamic" (int8 weights, float activations)
            or "float16" (float16 weights).
        function: "call" (the model's forward pass; signature `serve`) or
            "step" (a `LanguageModel`'s one step; signature `step`).
        fuse_lstm: LSTMs as the fused op (True) or as the loop (False).
        unroll: for the recurrent layers that are not fused: "auto" (the
            faster of the loop and the unrolled graph, timed on the
            interpreter; the loop when the number of steps is not fixed),
            False (the loop) or True (unrolled; needs a fixed number of steps).
        batch_size: the static batch of the signature.

    Returns:
        `path`.

    Raises:
        ValueError: for what cannot be exported, named: another backend, a
            subclassed model, a stateful recurrent layer, an LSTM that the
            fused op cannot compute (another activation, `return_state=True`,
            an `initial_state`; `fuse_lstm=False` exports it as the loop), a
            mask with `batch_size` > 1, ops outside the builtin set.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"to_litert converts through TensorFlow. Received: the {keras.backend.backend()!r} "
            "backend"
        )
    if quantize not in LITERT_QUANTIZATIONS:
        raise ValueError(
            f"to_litert: `quantize` must be one of {LITERT_QUANTIZATIONS}. "
            f"Received: quantize={quantize!r}"
        )
    if function not in LITERT_FUNCTIONS:
        raise ValueError(
            f"to_litert: `function` must be one of {LITERT_FUNCTIONS}. "
            f"Received: function={function!r}"
        )
    if unroll not in ("auto", True, False):
        raise ValueError(
            f"to_litert: `unroll` must be 'auto', True or False. Received: unroll={unroll!r}"
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"to_litert: `batch_size` must be a positive integer. Received: {batch_size!r}"
        )
    if function == "step":
        flatbuffer = _convert_step(model, quantize, batch_size)
    elif unroll != "auto":
        flatbuffer = _convert_call(model, quantize, fuse_lstm, unroll, batch_size)
    else:
        flatbuffer = _convert_call(model, quantize, fuse_lstm, False, batch_size)
        if _has_loops(model, fuse_lstm):
            unrolled = _convert_call(model, quantize, fuse_lstm, True, batch_size)
            if _litert_seconds(unrolled) < _litert_seconds(flatbuffer):
                flatbuffer = unrolled
    with open(path, "wb") as file:
        file.write(flatbuffer)
    metadata = _litert_metadata(model, function)
    if metadata is not None:
        from rnn_keras.on_device import metadata_path

        metadata_path(path).write_text(
            json.dumps(metadata, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return path


def _litert_metadata(model, function):
    """What a task's `.tflite` signature cannot hold, for `rnn_keras.on_device` (or None)."""
    import numpy as np

    from rnn_keras import on_device, preprocessors
    from rnn_keras.text import ReviewStandardizer

    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        return None
    if function == "step":
        return {
            "kind": "language_model_step",
            "state_size": model.state_size,
            "start_id": int(preprocessor.start_id),
            "separator": preprocessor.separator,
            "vocabulary": preprocessor.get_vocabulary(),
        }
    if isinstance(preprocessor, preprocessors.TextClassifierPreprocessor):
        config = preprocessor.tokenizer.get_config()
        standardize = config.get("standardize")
        if not isinstance(standardize, ReviewStandardizer) or config.get("split") != "whitespace":
            return None  # no pure-Python tokenizer for another rule
        return {
            "kind": "review_classifier",
            "rule": on_device.REVIEW_RULE,
            "max_tokens": preprocessor.sequence_length,
            "max_bytes": standardize.max_chars,
            "vocabulary": preprocessor.get_vocabulary(),
        }
    if isinstance(preprocessor, preprocessors.FeatureWindowPreprocessor):
        normalization = preprocessor.normalization
        return {
            "kind": "feature_windows",
            "features": (
                "each numeric column normalised, (x - mean) / sqrt(variance), a missing reading "
                "(NaN) 0; one 0/1 missing indicator per numeric column; [sin, cos] of each "
                "periodic column's phase 2 pi (value - offset) / period; a one-hot vector of "
                "each categorical column, its vocabulary's order from index 1 (index 0: a "
                "value outside it)"
            ),
            "preprocessor": preprocessor.get_config(),
            "mean": np.asarray(normalization.mean).reshape(-1).tolist() if normalization else [],
            "variance": (
                np.asarray(normalization.variance).reshape(-1).tolist() if normalization else []
            ),
        }
    return None


def _convert_step(model, quantize, batch_size):
    import tensorflow as tf

    from rnn_keras.models import LanguageModel

    if not isinstance(model, LanguageModel):
        raise ValueError(
            "to_litert(function='step') exports a LanguageModel's one-step function. "
            f"Received: a {type(model).__name__}"
        )

    def step(ids, state):
        logits, state = model.step(ids, state)
        return {"logits": logits, "state": state}

    signature = [
        tf.TensorSpec([batch_size], tf.int32, name="ids"),
        tf.TensorSpec([batch_size, model.state_size], tf.float32, name="state"),
    ]
    return _convert(model, "step", step, signature, quantize)


def _convert_call(model, quantize, fuse_lstm, unroll, batch_size):
    import tensorflow as tf

    if unroll and not _fixed_length(model):
        raise ValueError(
            f"to_litert(unroll=True) unrolls a fixed number of time steps. Received: "
            f"{model.name!r} with input shapes {[tuple(x.shape) for x in model.inputs]}"
        )
    network = _litert_network(model, fuse_lstm, unroll)
    signature = [
        tf.TensorSpec((batch_size, *x.shape[1:]), x.dtype, name=x.name.split(":")[0])
        for x in network.inputs
    ]

    def serve(*inputs):
        outputs = network(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        if isinstance(outputs, (list, tuple)):
            return {f"output_{i}": output for i, output in enumerate(outputs)}
        return {"output": outputs}

    return _convert(network, "serve", serve, signature, quantize)


def _convert(model, name, function, signature, quantize):
    """The flatbuffer of `function` (a signature `name`) over `model`'s weights."""
    import tempfile

    import tensorflow as tf

    module = tf.Module()
    # The weights, tracked for the SavedModel (the model itself would bring its own
    # serving signature, traced for any batch size).
    module.model_weights = [weight.value for weight in model.weights]
    setattr(module, name, tf.function(function, input_signature=signature, autograph=False))
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures={name: getattr(module, name)})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as error:  # the converter's ConverterError names the ops
            raise ValueError(
                f"to_litert: {model.name!r} does not convert with LiteRT's builtin ops only "
                f"(no Flex or custom ops are allowed). The converter said: {error}"
            ) from error


def _has_loops(model, fuse_lstm):
    """Whether `model` holds recurrent layers that convert as loops, over a fixed length."""
    from rnn_keras.layers import _SequenceLayer

    if not _fixed_length(model):
        return False
    for layer in _all_layers(model):
        inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
        if isinstance(inner, _SequenceLayer) and not (fuse_lstm and _is_lstm(inner)):
            return True
    return False


def _fixed_length(model):
    """Whether every input of `model` has a fixed shape past the batch axis."""
    return all(None not in x.shape[1:] for x in model.inputs)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _litert_seconds(flatbuffer):
    """Median seconds of one interpreter call of `flatbuffer` on zeros."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from rnn_keras.benchmarking import median_seconds

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))

    def invoke(calls):
        for _ in range(calls):
            interpreter.invoke()

    return median_seconds(invoke, steps=20, repeats=5, warmup_steps=1)


def _litert_network(model, fuse_lstm, unroll):
    """A copy of `model` whose recurrent layers convert as `to_litert` documents."""

    def clone(layer):
        return _litert_layer(layer, fuse_lstm, unroll)

    if not isinstance(model, keras.Model):
        raise ValueError(f"to_litert exports a keras.Model. Received: {type(model).__name__}")
    try:
        return keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as error:
        if "only supported for Sequential" not in str(error):
            raise
        raise ValueError(
            "to_litert exports Functional and Sequential Keras models, whose layers are known. "
            f"Received: {model.name!r}, a subclassed {type(model).__name__}"
        ) from None


def _is_lstm(layer):
    from rnn_keras.layers import LSTM

    return isinstance(layer, (LSTM, keras.layers.LSTM))


def _litert_layer(layer, fuse_lstm, unroll):
    """The layer that stands for `layer` in the converted copy (often `layer` itself)."""
    from rnn_keras.layers import _SequenceLayer

    wrapped = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else None
    inner = wrapped or layer
    if not isinstance(inner, (keras.layers.RNN, _SequenceLayer)):
        return layer
    if inner.stateful:
        raise ValueError(
            f"to_litert: layer {layer.name!r} is stateful; an exported model carries no state "
            "from one call to the next. Expected: a model built with stateful=False (an "
            "rnn_keras layer's `sharing_weights(stateful=False)` shares its weights)"
        )
    if fuse_lstm and _is_lstm(inner):
        export = _FusedLSTM
    elif isinstance(inner, _SequenceLayer):

        def export(rnn):  # the loop, over the same cell and weights
            return rnn.sharing_weights(use_fused=False, unroll=unroll)

    else:
        return layer  # Keras's own GRU, SimpleRNN, RNN: its loop, as Keras converts it
    if wrapped is None:
        return export(layer)
    return _Bidirectional(layer, export(layer.forward_layer), export(layer.backward_layer))


def _fused_lstm_function(go_backwards):
    """A tf.function the LiteRT converter replaces by one fused sequence-LSTM op.

    The converter's contract for Keras LSTMs (TensorFlow's
    `prepare_composite_functions_tf`): a function tagged
    `api_implements="lstm_<unique>"` of (inputs, h0, c0, kernel, recurrent
    kernel, bias), batch-major, returning (last output, outputs, h, c,
    runtime). Its body, the LSTM equations of `rnn_keras.LSTMCell` over a
    `tf.scan`, runs wherever the function is not converted.
    """
    import uuid

    import tensorflow as tf

    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = tf.transpose(inputs, [1, 0, 2])
        if go_backwards:
            steps = tf.reverse(steps, [0])

        def cell(carry, x):
            h, c = carry
            z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
            return tf.sigmoid(z_o) * tf.tanh(c), c

        hs, cs = tf.scan(cell, steps, initializer=(init_h, init_c))
        outputs = tf.transpose(hs, [1, 0, 2])
        return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)

    return tf.function(
        lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": go_backwards,
        },
    )


class _FusedLSTM(keras.layers.Layer):
    """A trained LSTM layer as the converter's fused-LSTM composite (export only).

    The weights are frozen into constants (the converter's fusion reads them
    as constants); the mask is passed along and not applied (see `to_litert`).
    """

    def __init__(self, layer):
        from rnn_keras.layers import _activation_set

        reasons = []
        if layer.cell.activation not in _activation_set("tanh"):
            reasons.append("activation is not tanh")
        if layer.cell.recurrent_activation not in _activation_set("sigmoid"):
            reasons.append("recurrent_activation is not sigmoid")
        if layer.return_state:
            reasons.append("return_state=True (the fused op gives no final cell state)")
        if reasons:
            raise ValueError(
                f"to_litert: LSTM layer {layer.name!r} cannot become the fused LSTM op: "
                f"{'; '.join(reasons)}. Export it as the loop with fuse_lstm=False"
            )
        super().__init__(name=layer.name)
        cell = layer.cell
        units = cell.units
        bias = cell.bias if cell.use_bias else keras.ops.zeros((4 * units,))
        self.lstm_weights = [
            keras.ops.convert_to_numpy(w) for w in (cell.kernel, cell.recurrent_kernel, bias)
        ]
        self.units = units
        self.return_sequences = layer.return_sequences
        self.layer_name = layer.name
        self.function = _fused_lstm_function(layer.go_backwards)
        self.supports_masking = True

    def call(self, inputs, mask=None, initial_state=None, training=None):
        import tensorflow as tf

        if initial_state is not None:
            raise ValueError(
                f"to_litert: LSTM layer {self.layer_name!r} is called with an initial_state; "
                "the fused LSTM op starts from zeros. Export it as the loop with fuse_lstm=False"
            )
        batch_size = inputs.shape[0]  # static when converted (None while the copy is built)
        if mask is not None and batch_size not in (None, 1):
            raise ValueError(
                f"to_litert: LSTM layer {self.layer_name!r} receives a mask; masks are not "
                "exported, so a masked model runs one sequence at a time at its true length. "
                f"Expected: batch_size=1. Received: batch_size={batch_size}"
            )
        if batch_size is None:
            batch_size = tf.shape(inputs)[0]
        zeros = tf.zeros([batch_size, self.units], inputs.dtype)
        weights = [tf.constant(w, inputs.dtype) for w in self.lstm_weights]
        last, outputs, *_ = self.function(inputs, zeros, zeros, *weights)
        return outputs if self.return_sequences else last

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (*input_shape[:2], self.units)
        return (input_shape[0], self.units)


class _Bidirectional(keras.layers.Layer):
    """A `keras.layers.Bidirectional` `layer` computed by two given layers.

    (`keras.layers.Bidirectional` itself would copy the layers it is given,
    without their weights.)
    """

    def __init__(self, layer, forward_layer, backward_layer):
        super().__init__(name=layer.name)
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = layer.merge_mode
        self.return_sequences = layer.forward_layer.return_sequences
        self.supports_masking = True

    def call(self, inputs, mask=None, initial_state=None, training=None):
        from keras import ops

        y = self.forward_layer(inputs, mask=mask, initial_state=initial_state)
        y_rev = self.backward_layer(inputs, mask=mask, initial_state=initial_state)
        if isinstance(y, (list, tuple)):  # return_state: the outputs, then each state
            raise ValueError(
                f"to_litert: Bidirectional layer {self.name!r} has return_state=True; "
                "the export takes its outputs only. Expected: return_state=False"
            )
        if self.return_sequences:
            y_rev = ops.flip(y_rev, axis=1)
        if self.merge_mode == "concat":
            return ops.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        if self.merge_mode == "mul":
            return y * y_rev
        return [y, y_rev]

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences:
            return None
        return mask if self.merge_mode is not None else [mask, mask]


def export_translator(translator, path, beam_size=5, length_penalty_alpha=0.6, max_length=100):
    """Writes `translator`'s SavedModel: `translate(text: tf.string [None]) -> tf.string [None]`,
    beam search inside. A zero-size batch gives a zero-size answer; an empty or unreadable
    sentence gives a (possibly empty) translation, never an error."""
    import tensorflow as tf

    from rnn_keras.translation import _check_search

    _check_search(beam_size, max_length, length_penalty_alpha)
    preprocessor = translator.preprocessor
    archive = keras.export.ExportArchive()
    archive.track(translator)
    archive.track(preprocessor)

    def translate(text):
        def run():
            source = preprocessor.source_ids(text)
            ids = translator.search_ids(source, beam_size, max_length, length_penalty_alpha)[0]
            return preprocessor.detokenize(ids)

        return tf.cond(tf.size(text) > 0, run, lambda: tf.zeros([0], tf.string))

    archive.add_endpoint(
        "translate", translate, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    archive.write_out(str(path), verbose=False)
