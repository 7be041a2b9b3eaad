"""Task models exported as TensorFlow SavedModels that serve raw text with no code of ours.

Both functions write with `keras.export.ExportArchive`; the result loads with
`tf.saved_model.load(path)` in a process that has neither rnn_keras nor Keras.
"""

import keras

__all__ = ["export_text_classifier", "export_text_generator"]


def export_text_classifier(text_model, path, endpoint="serve"):
    """Exports a model of raw strings `(batch,)` -> one probability per string `(batch, 1)`.

    The SavedModel's `endpoint` maps `tf.string [None]` to `float32 [None]`.
    The model holds its own preprocessing (e.g. a `TextVectorization` in front
    of a `SequenceClassifier`).
    """
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(text_model)

    def serve(text):
        return tf.reshape(tf.cast(text_model(text, training=False), tf.float32), [-1])

    archive.add_endpoint(
        name=endpoint,
        fn=serve,
        input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")],
    )
    archive.write_out(str(path), verbose=False)


def export_text_generator(language_model, lookup, path, start_token="\n"):
    """Exports a character-level `LanguageModel` with the endpoints of a text generator.

    `lookup` is the `keras.layers.StringLookup` from characters to the model's
    ids (id 0 out-of-vocabulary). Endpoints, all on strings of characters
    (invalid UTF-8 replaced):

    * `generate(prompt: string [None], num_chars: int32 [], temperature: float32 [])`
      -> string [None]: each prompt followed by `num_chars` generated
      characters (temperature 0: greedy). An empty prompt starts after
      `start_token`, so generation starts at the beginning of a line.
    * `score(text: string [None])` -> `{"nats": float32 [None], "chars": int32 [None]}`:
      the negative log-likelihood of each text's characters 2..n given those
      before, and n - 1.
    * `initial_state(batch_size: int32 [])` -> float32 `[batch_size, S]`.
    * `step(ids: int32 [None], state: float32 [None, S])` -> `{"logits", "state"}`.
    * `vocabulary()` -> string `[V]`: the character of each id.
    """
    import tensorflow as tf

    vocabulary = tf.constant(lookup.get_vocabulary())
    start_id = int(lookup(tf.constant(start_token)).numpy())

    def ids_of(text):
        chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")
        ids = tf.cast(tf.ragged.map_flat_values(lookup, chars), tf.int32)
        return ids.to_tensor(0), tf.cast(ids.row_lengths(), tf.int32)

    def generate(prompt, num_chars, temperature):
        ids, lengths = ids_of(prompt)
        new_ids = language_model.generate(ids, lengths, num_chars, temperature, start_id)
        return prompt + tf.strings.reduce_join(tf.gather(vocabulary, new_ids), axis=1)

    def score(text):
        ids, lengths = ids_of(text)
        nats, scored = language_model.score(ids, lengths)
        return {"nats": nats, "chars": scored}

    def step(ids, state):
        logits, state = language_model.step(ids, state)
        return {"logits": logits, "state": state}

    archive = keras.export.ExportArchive()
    archive.track(lookup)
    archive.track(language_model)
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
    archive.write_out(str(path), verbose=False)
