"""The fast layers (rnn_keras.SimpleRNN/LSTM/GRU) equal the generic keras.layers.RNN(cell) loop."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CELL_NAMES, randomize_weights

import rnn_keras

FAST = {"simple": rnn_keras.SimpleRNN, "lstm": rnn_keras.LSTM, "gru": rnn_keras.GRU}
# 7 steps: one partially unrolled loop iteration of fast.STEPS_PER_ITERATION = 4
# steps, then 3 single steps.
BATCH, TIME, INPUT_DIM, UNITS = 3, 7, 5, 4
LENGTHS = [7, 5, 2]


def twins(cell_name, build_shape=(None, None, INPUT_DIM), weight_seed=0, **kwargs):
    """A fast layer and a generic RNN over the same cell config, with the same random weights."""
    cell_keys = {"dropout", "recurrent_dropout", "seed", "activation"}
    fast_only = {"steps_per_iteration", "batch_splits", "use_fused", "implementation", "use_cudnn"}
    cell_kwargs = {k: v for k, v in kwargs.items() if k in cell_keys}
    rnn_kwargs = {k: v for k, v in kwargs.items() if k not in cell_keys | fast_only}
    fast = FAST[cell_name](UNITS, **kwargs)
    generic = keras.layers.RNN(rnn_keras.get_cell(cell_name)(UNITS, **cell_kwargs), **rnn_kwargs)
    fast.build(build_shape)
    generic.build(build_shape)
    randomize_weights(fast, weight_seed)
    generic.set_weights(fast.get_weights())
    return fast, generic


def outputs_and_gradients(layer, x, mask=None, initial_state=None, training=False, probes=None):
    """All outputs, and the gradients of a probe loss w.r.t. weights, inputs and initial state."""
    watched = [x] + list(initial_state or [])
    with tf.GradientTape() as tape:
        tape.watch(watched)
        outputs = layer(x, mask=mask, initial_state=initial_state, training=training)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = sum(tf.reduce_sum(o * p) for o, p in zip(outputs, probes, strict=True))
    return outputs, tape.gradient(loss, layer.trainable_variables + watched)


def assert_same(fast_results, generic_results):
    for got, want in zip(fast_results[0], generic_results[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(fast_results[1], generic_results[1], strict=True):
        scale = float(np.abs(want).max()) + 1e-12
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


def probes_for(layer, x, **call_kwargs):
    outputs = layer(x, **call_kwargs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    rng = np.random.default_rng(1)
    return [tf.constant(rng.standard_normal(o.shape), o.dtype) for o in outputs]


def data(seed=2):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((BATCH, TIME, INPUT_DIM)), tf.float32)
    mask = tf.constant(np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None])
    return x, mask


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize(
    "masked, go_backwards, zero_output_for_mask, return_sequences",
    list(itertools.product([False, True], [False, True], [False, True], [False, True])),
)
def test_fast_equals_generic(
    cell_name, masked, go_backwards, zero_output_for_mask, return_sequences
):
    x, mask = data()
    fast, generic = twins(
        cell_name,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
        return_sequences=return_sequences,
        return_state=True,
    )
    assert fast.uses_fast_path()
    mask = mask if masked else None
    probes = probes_for(generic, x, mask=mask)
    assert_same(
        outputs_and_gradients(fast, x, mask, probes=probes),
        outputs_and_gradients(generic, x, mask, probes=probes),
    )


def compare_sequences(cell_name, x, mask, training, **cell_kwargs):
    """Fast and generic layers (sequences and states returned) agree on x, mask."""
    fast, generic = twins(
        cell_name, return_sequences=True, return_state=True, seed=7, **cell_kwargs
    )
    probes = probes_for(generic, x, mask=mask)
    fast(x, mask=mask)  # draws as many dropout masks as the probe call did
    assert_same(
        outputs_and_gradients(fast, x, mask, training=training, probes=probes),
        outputs_and_gradients(generic, x, mask, training=training, probes=probes),
    )


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("steps_per_iteration", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("time_steps", [1, 4, 9])
def test_partial_unrolling_covers_every_length(cell_name, steps_per_iteration, time_steps):
    rng = np.random.default_rng(time_steps)
    x = tf.constant(rng.standard_normal((BATCH, time_steps, INPUT_DIM)), tf.float32)
    mask = tf.constant(rng.random((BATCH, time_steps)) < 0.7)
    compare_sequences(cell_name, x, mask, training=False, steps_per_iteration=steps_per_iteration)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("parts", [1, 2, 5])
@pytest.mark.parametrize("batch", [1, 3])
def test_batch_parts_keep_every_row(cell_name, parts, batch):
    rng = np.random.default_rng(batch)
    x = tf.constant(rng.standard_normal((batch, TIME, INPUT_DIM)), tf.float32)
    mask = tf.constant(np.arange(TIME)[None, :] < np.array(LENGTHS[:batch])[:, None])
    compare_sequences(  # 5 parts of 3 rows: some empty
        cell_name,
        x,
        mask,
        training=True,
        dropout=0.2,
        recurrent_dropout=0.3,
        batch_splits=parts,
    )


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fast_equals_generic_with_initial_state_and_dropout(cell_name):
    x, mask = data(seed=3)
    fast, generic = twins(
        cell_name,
        return_sequences=True,
        return_state=True,
        dropout=0.3,
        recurrent_dropout=0.4,
        seed=7,
    )
    rng = np.random.default_rng(4)
    initial_state = [
        tf.constant(rng.standard_normal((BATCH, UNITS)), tf.float32)
        for _ in range(2 if cell_name == "lstm" else 1)
    ]
    probes = probes_for(generic, x, mask=mask, initial_state=initial_state)
    fast(x, mask=mask, initial_state=initial_state)  # draws as many masks as the probe call did
    # Same seed, same draws: one mask per sequence for inputs and one for the state.
    fast_results = outputs_and_gradients(fast, x, mask, initial_state, True, probes)
    generic_results = outputs_and_gradients(generic, x, mask, initial_state, True, probes)
    assert_same(fast_results, generic_results)
    plain = outputs_and_gradients(fast, x, mask, initial_state, False, probes)
    assert np.abs(plain[0][0] - fast_results[0][0]).max() > 1e-3  # dropout did act


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fast_inside_tf_function_and_xla(cell_name):
    x, mask = data(seed=5)
    fast, generic = twins(cell_name, return_sequences=True)
    probes = probes_for(generic, x, mask=mask)
    expected = outputs_and_gradients(generic, x, mask, probes=probes)
    for jit_compile in (False, True):
        compiled = tf.function(
            lambda v, m: outputs_and_gradients(fast, v, m, probes=probes), jit_compile=jit_compile
        )
        assert_same(compiled(x, mask), expected)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
def test_fast_bidirectional_and_stacked(cell_name, merge_mode):
    x, mask = data(seed=6)

    def model(layer_factory):
        inputs = keras.Input((None, INPUT_DIM))
        seq = keras.layers.Bidirectional(
            layer_factory(return_sequences=True), merge_mode=merge_mode
        )(inputs)
        seq = seq if merge_mode else keras.layers.Concatenate()(seq)
        return keras.Model(inputs, layer_factory()(seq))

    fast = model(lambda **kw: FAST[cell_name](UNITS, **kw))
    generic = model(lambda **kw: keras.layers.RNN(rnn_keras.get_cell(cell_name)(UNITS), **kw))
    randomize_weights(fast, seed=8)
    generic.set_weights(fast.get_weights())
    probes = [tf.constant(np.random.default_rng(9).standard_normal((BATCH, UNITS)), tf.float32)]

    def run(model_):
        with tf.GradientTape() as tape:
            out = model_(x, mask=mask)
            loss = tf.reduce_sum(out * probes[0])
        return [out], tape.gradient(loss, model_.trainable_variables)

    assert_same(run(fast), run(generic))


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fast_stateful(cell_name):
    x, _ = data(seed=10)
    fast, generic = twins(
        cell_name, build_shape=(BATCH, None, INPUT_DIM), stateful=True, return_sequences=True
    )
    for window in (slice(0, 3), slice(3, 8)):
        np.testing.assert_allclose(fast(x[:, window]), generic(x[:, window]), rtol=1e-5, atol=1e-6)
    fast.reset_state()
    generic.reset_state()
    np.testing.assert_allclose(fast(x[:, :2]), generic(x[:, :2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fallback_to_generic_loop_stays_correct(cell_name):
    x, mask = data(seed=11)
    for kwargs in ({"unroll": True}, {"activation": "relu"}):
        build_shape = (None, TIME, INPUT_DIM)
        fast, generic = twins(cell_name, build_shape=build_shape, return_sequences=True, **kwargs)
        assert not fast.uses_fast_path()
        probes = probes_for(generic, x, mask=mask)
        assert_same(
            outputs_and_gradients(fast, x, mask, probes=probes),
            outputs_and_gradients(generic, x, mask, probes=probes),
        )


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_use_fused_false_runs_the_generic_loop_of_the_same_layer(cell_name):
    """One layer class, both loops: use_fused=True and False agree, whatever `implementation`."""
    x, mask = data(seed=15)
    fused, generic = twins(cell_name, return_sequences=True, return_state=True, use_fused=True)
    assert fused.uses_fast_path()
    for implementation in (1, 2):
        loop = FAST[cell_name](
            UNITS,
            return_sequences=True,
            return_state=True,
            use_fused=False,
            implementation=implementation,
        )
        loop.build((None, None, INPUT_DIM))
        loop.set_weights(fused.get_weights())
        assert not loop.uses_fast_path()
        probes = probes_for(generic, x, mask=mask)
        assert_same(
            outputs_and_gradients(fused, x, mask, probes=probes),
            outputs_and_gradients(loop, x, mask, probes=probes),
        )


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fast_layer_config_and_keras_file(cell_name, tmp_path):
    layer = FAST[cell_name](
        6,
        return_sequences=True,
        go_backwards=True,
        dropout=0.2,
        recurrent_dropout=0.1,
        seed=3,
        kernel_regularizer="l2",
        name="recurrent",
    )
    config = layer.get_config()
    clone = FAST[cell_name].from_config(config)
    assert clone.get_config() == config
    assert config["units"] == 6 and config["go_backwards"] and config["dropout"] == 0.2

    inputs = keras.Input((None, INPUT_DIM))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    randomize_weights(model, seed=12)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    x, _ = data(seed=13)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_fast_fit_under_mixed_float16_and_jit(cell_name):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((16, 6, INPUT_DIM)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    for policy, jit_compile in (("mixed_float16", False), ("float32", True)):
        keras.config.set_dtype_policy(policy)
        inputs = keras.Input((None, INPUT_DIM))
        hidden = FAST[cell_name](8, return_sequences=True, dropout=0.1, recurrent_dropout=0.1)(
            inputs
        )
        outputs = keras.layers.Dense(1, dtype="float32")(FAST[cell_name](8)(hidden))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=jit_compile)
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
