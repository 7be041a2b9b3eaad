"""rnn_keras.SequenceAttention against a NumPy reference: the three scores, one step and
every step, masking, and saving."""

import keras
import numpy as np
import pytest

import rnn_keras
from rnn_keras.attention import SequenceAttention

RNG = np.random.default_rng(0)
QUERY_DIM, MEMORY_DIM, UNITS = 5, 6, 4


def reference(layer, query, memory, mask):
    """Scores, weights and contexts in NumPy, one query and one source position at a time."""
    weights = {w.path.split("/")[-1]: w.numpy().astype("float64") for w in layer.weights}
    batch, steps, sources = query.shape[0], query.shape[1], memory.shape[1]
    scores = np.zeros((batch, steps, sources))
    for b in range(batch):
        for t in range(steps):
            q = query[b, t]
            for s in range(sources):
                k = memory[b, s]
                if layer.score == "additive":
                    hidden = q @ weights["query_kernel"] + k @ weights["memory_kernel"]
                    hidden = hidden + weights.get("bias", 0.0)
                    scores[b, t, s] = np.tanh(hidden) @ weights["score_vector"]
                elif layer.score == "general":
                    scores[b, t, s] = q @ weights["kernel"] @ k
                else:
                    scores[b, t, s] = q @ k
    attention = np.zeros_like(scores)
    for b in range(batch):
        real = np.flatnonzero(mask[b])
        for t in range(steps):
            if len(real):
                e = np.exp(scores[b, t, real] - scores[b, t, real].max())
                attention[b, t, real] = e / e.sum()
    return attention @ memory, attention


def randomized(layer, query, memory):
    layer(query, memory)  # builds
    for weight in layer.weights:
        weight.assign(RNG.normal(size=weight.shape).astype("float32"))
    return layer


@pytest.mark.parametrize("score", ["additive", "general", "dot"])
def test_every_step_and_one_step_against_numpy(score):
    memory_dim = QUERY_DIM if score == "dot" else MEMORY_DIM
    query = RNG.normal(size=(3, 4, QUERY_DIM)).astype("float32")
    memory = RNG.normal(size=(3, 7, memory_dim)).astype("float32")
    mask = np.array([[1] * 7, [1] * 3 + [0] * 4, [1] * 5 + [0] * 2], bool)
    layer = randomized(SequenceAttention(score, units=UNITS), query, memory)
    context, weights = layer(query, memory, memory_mask=mask)
    want_context, want_weights = reference(layer, query.astype("float64"), memory, mask)
    np.testing.assert_allclose(weights, want_weights, atol=1e-5)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    # Keys computed once per source (as a decoder does before its loop) give the same.
    keyed = layer(query, memory, memory_mask=mask, keys=layer.keys(memory))
    np.testing.assert_allclose(keyed[0], want_context, atol=1e-5)
    # One decoder step: a (batch, query_dim) query gives step 0's rows.
    step_context, step_weights = layer(query[:, 0], memory, memory_mask=mask)
    assert step_context.shape == (3, memory_dim) and step_weights.shape == (3, 7)
    np.testing.assert_allclose(step_weights, want_weights[:, 0], atol=1e-5)
    np.testing.assert_allclose(step_context, want_context[:, 0], atol=1e-5)


@pytest.mark.parametrize("score", ["additive", "general"])
def test_padding_changes_nothing_and_empty_sources_give_zeros(score):
    query = RNG.normal(size=(2, 3, QUERY_DIM)).astype("float32")
    memory = RNG.normal(size=(2, 4, MEMORY_DIM)).astype("float32")
    layer = randomized(SequenceAttention(score, units=UNITS), query, memory)
    alone = [layer(query[b : b + 1], memory[b : b + 1]) for b in range(2)]
    padded = np.concatenate([memory, RNG.normal(size=(2, 5, MEMORY_DIM))], axis=1)
    mask = np.concatenate([np.ones((2, 4), bool), np.zeros((2, 5), bool)], axis=1)
    context, weights = layer(query, padded.astype("float32"), memory_mask=mask)
    for b in range(2):
        np.testing.assert_allclose(context[b], alone[b][0][0], atol=1e-6)
        np.testing.assert_allclose(weights[b, :, :4], alone[b][1][0], atol=1e-6)
    np.testing.assert_array_equal(weights[:, :, 4:], 0.0)
    # The Keras mask of the memory is used when no memory_mask is given.
    masked = keras.layers.Masking(0.0)(np.where(mask[..., None], padded, 0.0).astype("float32"))
    np.testing.assert_allclose(layer(query, masked)[0], context, atol=1e-6)
    empty = np.zeros((2, 9), bool)
    context, weights = layer(query, padded.astype("float32"), memory_mask=empty)
    np.testing.assert_array_equal(context, 0.0)
    np.testing.assert_array_equal(weights, 0.0)


def test_in_a_functional_model_and_saved(tmp_path):
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None, 3))
    memory = keras.layers.Embedding(20, MEMORY_DIM, mask_zero=True)(source)
    states = rnn_keras.LSTM(QUERY_DIM, return_sequences=True)(target)
    context, weights = SequenceAttention("general", name="attention")(states, memory)
    model = keras.Model([source, target], [context, weights])
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 1]], "int32")
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    before = model.predict([ids, x], verbose=0)
    assert before[1].shape == (2, 6, 5)
    np.testing.assert_array_equal(before[1][0, :, 3:], 0.0)  # padding ids get no weight
    np.testing.assert_allclose(before[1].sum(axis=-1), 1.0, atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(loaded.predict([ids, x], verbose=0), before, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert loaded.get_layer("attention").get_config()["score"] == "general"


def test_mixed_precision_keeps_the_softmax_in_float32():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        layer = SequenceAttention("additive", units=UNITS)
        query = RNG.normal(size=(2, 3, QUERY_DIM)).astype("float16")
        memory = RNG.normal(size=(2, 4, MEMORY_DIM)).astype("float16")
        mask = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)
        context, weights = layer(query, memory, memory_mask=mask)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert context.dtype == "float16" and np.isfinite(np.asarray(weights, "float32")).all()
    np.testing.assert_allclose(np.asarray(weights, "float32")[0].sum(axis=-1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(context, "float32")[1], 0.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="`score` must be one of"):
        SequenceAttention("concat")
    with pytest.raises(ValueError, match="additive score needs `units`"):
        SequenceAttention("additive")
    with pytest.raises(ValueError, match="dot score needs a query and memory of one width"):
        SequenceAttention("dot")(np.ones((1, 2, 3), "float32"), np.ones((1, 4, 5), "float32"))
    with pytest.raises(ValueError, match=r"expected a query \(batch, \[steps,\] width\)"):
        SequenceAttention("dot")(np.ones((3,), "float32"), np.ones((1, 4, 3), "float32"))


def decoder_reference(decoder, inputs, memory, mask):
    """The decoder in NumPy, one sentence and one step at a time (LSTM from tests/reference)."""
    from reference import lstm

    kernel, recurrent_kernel, bias = (w.numpy().astype("float64") for w in decoder.cell.weights)
    attentive = decoder.attention is not None
    w_att = decoder.attention.kernel.numpy().astype("float64") if attentive else None
    w_c = decoder.combine.kernel.numpy().astype("float64")
    units, cell_units = decoder.units, recurrent_kernel.shape[0]
    outputs, all_weights = [], []
    for b in range(inputs.shape[0]):
        h, c, tilde = np.zeros(cell_units), np.zeros(cell_units), np.zeros(units)
        real = memory[b][mask[b]]
        rows, weight_rows = [], []
        for x_t in inputs[b]:
            x = np.concatenate([x_t, tilde]) if decoder.input_feeding else x_t
            hs, cs = lstm(x[None], kernel, recurrent_kernel, bias, h0=h, c0=c)
            h, c = hs[0], cs[0]
            full = np.zeros(memory.shape[1])
            if not attentive:  # no attention: h~_t = tanh(W_c h_t), weights 0
                tilde = np.tanh(h @ w_c)
                rows.append(tilde)
                weight_rows.append(full)
                continue
            scores = real @ (w_att.T @ h)  # e_s = h^T W k_s
            a = np.exp(scores - scores.max())
            a /= a.sum()
            context = a @ real
            tilde = np.tanh(np.concatenate([context, h]) @ w_c)
            rows.append(tilde)
            full[mask[b]] = a
            weight_rows.append(full)
        outputs.append(rows)
        all_weights.append(weight_rows)
    return np.array(outputs), np.array(all_weights)


@pytest.mark.parametrize(
    "input_feeding, attention", [(True, "general"), (False, "general"), (True, None)]
)
def test_decoder_against_numpy_and_step_by_step(input_feeding, attention):
    decoder = rnn_keras.attention.AttentionDecoder(
        rnn_keras.LSTMCell(4),
        SequenceAttention(attention) if attention else None,
        units=3,
        input_feeding=input_feeding,
    )
    inputs = RNG.normal(size=(2, 5, 2)).astype("float32")
    memory = RNG.normal(size=(2, 6, MEMORY_DIM)).astype("float32")
    mask = np.array([[1] * 6, [1] * 2 + [0] * 4], bool)
    decoder(inputs, memory, memory_mask=mask)  # builds
    for weight in decoder.weights:
        weight.assign(RNG.normal(scale=0.7, size=weight.shape).astype("float32"))
    attentional, weights, state = decoder(inputs, memory, memory_mask=mask)
    want, want_weights = decoder_reference(decoder, inputs.astype("float64"), memory, mask)
    np.testing.assert_allclose(attentional, want, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-5)
    assert [tuple(s.shape) for s in state] == [(2, 4), (2, 4), (2, 3)]
    np.testing.assert_allclose(state[-1], want[:, -1], atol=1e-5)
    # step() from the initial state, one target position at a time, gives the same.
    carry = decoder.initial_state(2)
    for t in range(5):
        out, step_weights, carry = decoder.step(inputs[:, t], carry, memory, mask)
        np.testing.assert_allclose(out, want[:, t], atol=1e-5)
        np.testing.assert_allclose(step_weights, want_weights[:, t], atol=1e-5)


def test_decoder_trains_with_fit_and_is_saved(tmp_path):
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory = keras.layers.Embedding(12, 8, mask_zero=True)(source)
    embedded = keras.layers.Embedding(12, 5)(target)
    decoder = rnn_keras.attention.AttentionDecoder(
        rnn_keras.LSTMCell(6), SequenceAttention("additive", units=4), name="decoder"
    )
    attentional, _, _ = decoder(embedded, memory)
    logits = keras.layers.Dense(12)(attentional)
    model = keras.Model([source, target], logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = RNG.integers(1, 12, size=(16, 7)).astype("int32")
    ids[:8, 5:] = 0  # padded sources
    previous = np.concatenate([np.ones((16, 1), "int32"), ids[:, :-1]], axis=1)
    history = model.fit([ids, previous], ids, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    before = model.predict([ids, previous], verbose=0)
    model.save(tmp_path / "seq2seq.keras")
    loaded = keras.saving.load_model(tmp_path / "seq2seq.keras")
    np.testing.assert_allclose(loaded.predict([ids, previous], verbose=0), before, atol=1e-5)
    config = loaded.get_layer("decoder").get_config()
    assert config["input_feeding"] is True and config["units"] == 6
