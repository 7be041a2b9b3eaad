"""SavedModels that serve raw inputs with no code of ours, and `.keras` files without
optimizer state.

A task declares what it serves: `task.serving_endpoints(**options)` returns
`{name: (function, input_signature)}`, the first endpoint also served as
`serving_default`. `export_task(task, path)` (what `task.export(path)` calls)
writes them; this module knows no task. The SavedModel loads with
`tf.saved_model.load(path)` in a process that has neither rnn_keras nor Keras.
Each task's docstring lists its endpoints.

The SavedModel holds each variable once: `keras.export.ExportArchive.track(model)`
would also save the Keras variables beside the TensorFlow variables the
endpoints use (twice the weights on disk), so the task is tracked through a
holder that is not a layer, which finds its lookup tables (vocabularies) and
nothing else. No optimizer state is written: only what an endpoint reads.
"""

import keras

__all__ = ["export_task", "save_model", "serve_strings", "write_saved_model"]


def export_task(task, path, **options):
    """Writes `task`'s serving SavedModel to `path`: the endpoints the task declares.

    `options` go to `task.serving_endpoints` (e.g. a `Translator`'s `beam_size`).
    """
    declare = getattr(task, "serving_endpoints", None)
    if declare is None:
        raise ValueError(
            f"export_task: a {type(task).__name__} declares no serving endpoints. Expected: a "
            "task with a `serving_endpoints()` method (every rnn_keras task with its "
            "preprocessor); for a plain keras.Model use `model.export(path)`"
        )
    write_saved_model(path, declare(**options), tracked=[task])


def write_saved_model(path, endpoints, tracked=()):
    """Writes a SavedModel of `endpoints` (`{name: (function, input_signature)}`), with the
    lookup tables and other resources of the `tracked` objects."""
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    for resource in tracked:
        holder = tf.Module()  # a trackable that is not a layer: resources, no second copy
        holder.resource = resource
        archive.track(holder)
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def serve_strings(path, texts, endpoint="serve"):
    """A SavedModel's `endpoint` (one `tf.string [None]` input) on `texts`, as NumPy: what a
    server without rnn_keras answers (`tf.saved_model.load`)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept until the call returns: it owns the variables
    serve = getattr(loaded, endpoint, None)
    if serve is None:
        raise ValueError(
            f"serve_strings: {path} has no endpoint {endpoint!r}. Received signatures: "
            f"{sorted(loaded.signatures)}"
        )
    return serve(tf.constant(list(texts), dtype=tf.string)).numpy()


def outputs_as_float32(model, x):
    """`model(x)` as float32 for serving, `[batch]` for a model with one output."""
    import tensorflow as tf

    outputs = tf.cast(model(x, training=False), tf.float32)
    return outputs[:, 0] if outputs.shape[-1] == 1 else outputs


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
