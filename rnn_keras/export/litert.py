"""LiteRT (TensorFlow Lite) flatbuffers with builtin ops only, the fused LSTM op for every
LSTM, and the JSON a device needs beside them.

A model that ships more than its forward pass declares it: `model.litert_function(name,
batch_size)` returns `(function, input_signature)` for `to_litert(function=name)` (a
`LanguageModel`'s one "step"), and `model.litert_metadata(function)` the JSON written
beside the file (vocabularies, tokenizing rules, statistics) for `rnn_keras.export.on_device`.
This module knows no task.
"""

import json

import keras

from rnn_keras.layers.recurrent import LSTM, SequenceLayer, activation_set
from rnn_keras.utils.optional import import_module

__all__ = ["LITERT_QUANTIZATIONS", "to_litert"]

LITERT_QUANTIZATIONS = (None, "dynamic", "float16")


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
    if not isinstance(function, str):
        raise ValueError(f"to_litert: `function` must be a string. Received: {function!r}")
    if unroll not in ("auto", True, False):
        raise ValueError(
            f"to_litert: `unroll` must be 'auto', True or False. Received: unroll={unroll!r}"
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"to_litert: `batch_size` must be a positive integer. Received: {batch_size!r}"
        )
    if function != "call":
        flatbuffer = _convert_declared(model, function, quantize, batch_size)
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
    declared_metadata = getattr(model, "litert_metadata", None)
    metadata = None if declared_metadata is None else declared_metadata(function)
    if metadata is not None:
        from rnn_keras.export.on_device import metadata_path

        metadata_path(path).write_text(
            json.dumps(metadata, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return path


def _convert_declared(model, function, quantize, batch_size):
    """The flatbuffer of a function `model` declares (`model.litert_function`)."""
    declare = getattr(model, "litert_function", None)
    declared = None if declare is None else declare(function, batch_size)
    if declared is None:
        raise ValueError(
            f"to_litert(function={function!r}): a {type(model).__name__} declares no such "
            "function. Expected: function='call' (the forward pass), or a function the model "
            "declares in `litert_function` (a LanguageModel's 'step')"
        )
    fn, signature = declared
    return _convert(model, function, fn, signature, quantize)


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
    if not _fixed_length(model):
        return False
    for layer in _all_layers(model):
        inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
        if isinstance(inner, SequenceLayer) and not (fuse_lstm and _is_lstm(inner)):
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

    interpreter_module = import_module("ai_edge_litert.interpreter", feature="to_litert")

    from rnn_keras.utils.timing import median_seconds

    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
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
    return isinstance(layer, (LSTM, keras.layers.LSTM))


def _litert_layer(layer, fuse_lstm, unroll):
    """The layer that stands for `layer` in the converted copy (often `layer` itself)."""
    wrapped = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else None
    inner = wrapped or layer
    if not isinstance(inner, (keras.layers.RNN, SequenceLayer)):
        return layer
    if inner.stateful:
        raise ValueError(
            f"to_litert: layer {layer.name!r} is stateful; an exported model carries no state "
            "from one call to the next. Expected: a model built with stateful=False (an "
            "rnn_keras layer's `sharing_weights(stateful=False)` shares its weights)"
        )
    if fuse_lstm and _is_lstm(inner):
        export = _FusedLSTM
    elif isinstance(inner, SequenceLayer):

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
        reasons = []
        if layer.cell.activation not in activation_set("tanh"):
            reasons.append("activation is not tanh")
        if layer.cell.recurrent_activation not in activation_set("sigmoid"):
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
