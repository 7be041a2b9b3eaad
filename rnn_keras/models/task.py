"""What every task shares: raw inputs through its preprocessor in `fit`, `evaluate` and
`predict`; compile defaults; config; and serving, declared by the task itself.

A task is a functional `keras.Model` on a `RecurrentBackbone` with an optional
preprocessor (keras-hub's task = backbone + preprocessor, serialised together).
Each task declares its own serving endpoints (`serving_endpoints`) and, where it
ships to devices, its LiteRT metadata; `rnn_keras.export` writes whatever a task
declares and knows no task.
"""

import keras

from rnn_keras.export.saved_model import export_task, outputs_as_float32
from rnn_keras.models.backbone import RecurrentBackbone

__all__ = ["Task", "SteppedTask"]


class Task(keras.Model):
    """A functional model on a `RecurrentBackbone`, with an optional preprocessor.

    Config = the backbone and the preprocessor (serialized) + the head's
    arguments. A subclass lists its other constructor arguments in
    `config_keys`, each stored as the attribute of that name.

    With a `preprocessor`, `fit`, `evaluate` and `predict` also take raw
    inputs (what the preprocessor reads: strings, or dicts of feature windows),
    as lists, NumPy arrays or a `tf.data.Dataset` of `(x[, y[, sample_weight]])`
    batches: the preprocessor is mapped over the batches in the input pipeline,
    so the network (and a `tf.distribute` replica) only sees numbers. Inputs
    that are already numbers go straight to the network. `export(path)` writes
    a SavedModel that serves raw inputs (see each task).
    """

    backbone_cls = RecurrentBackbone
    preprocessor_cls = None
    config_keys = ()

    def _check_backbone(self, backbone):
        if not isinstance(backbone, self.backbone_cls):
            raise ValueError(
                f"{type(self).__name__}: `backbone` must be an rnn_keras.RecurrentBackbone. "
                f"Received: backbone={backbone!r}"
            )

    def _set_preprocessor(self, preprocessor):
        if isinstance(preprocessor, dict):
            preprocessor = keras.layers.deserialize(preprocessor)
        if preprocessor is not None and not isinstance(preprocessor, self.preprocessor_cls):
            raise ValueError(
                f"{type(self).__name__}: `preprocessor` must be an rnn_keras."
                f"{self.preprocessor_cls.__name__} or None. Received: preprocessor={preprocessor!r}"
            )
        self.preprocessor = preprocessor

    # -- raw inputs --------------------------------------------------------------------------

    def _is_raw(self, x):
        """Whether `x` (data or a tf.data.Dataset) needs the preprocessor."""
        import tensorflow as tf

        if self.preprocessor is None:
            return False
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            return self.preprocessor.is_raw(spec)
        return self.preprocessor.is_raw(x)

    def _preprocessed(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """A tf.data of preprocessed batches from raw `x` (a dataset, or data with `y`)."""
        import tensorflow as tf

        preprocessor = self.preprocessor
        if not isinstance(x, tf.data.Dataset):
            columns = [_as_column(x)]
            columns += [_as_column(v) for v in (y, sample_weight) if v is not None]
            data = tuple(columns) if len(columns) > 1 else columns[0]
            x = tf.data.Dataset.from_tensor_slices(data)
            if shuffle:
                x = x.shuffle(int(x.cardinality()), reshuffle_each_iteration=True)
            x = x.batch(batch_size or 32)

        def apply(*batch):
            return preprocessor(*batch)

        return x.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        validation_data = kwargs.get("validation_data")
        if validation_data is not None:
            kwargs["validation_data"] = self._raw_validation(validation_data, batch_size)
        if self._is_raw(x):
            x = self._preprocessed(x, y, sample_weight, batch_size, kwargs.pop("shuffle", True))
            y = sample_weight = batch_size = None
            kwargs["shuffle"] = False  # shuffled above, before batching
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def _raw_validation(self, data, batch_size):
        import tensorflow as tf

        if isinstance(data, tf.data.Dataset):
            return self._preprocessed(data) if self._is_raw(data) else data
        if isinstance(data, tuple | list) and data and self._is_raw(data[0]):
            return self._preprocessed(*data, batch_size=batch_size)
        return data

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self._is_raw(x):
            x = self._preprocessed(x, y, sample_weight, batch_size)
            y = sample_weight = batch_size = None
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        if self._is_raw(x):
            x = self._preprocessed(x, batch_size=batch_size)
            batch_size = None
        return super().predict(x, batch_size=batch_size, **kwargs)

    # -- compile defaults --------------------------------------------------------------------

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks the task's defaults.

        optimizer "auto": Adam (learning rate 1e-3) with gradient clipping by
        global norm 1.0; loss and metrics "auto": see the task (its
        `default_loss()` and `default_metrics()`).
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3, global_clipnorm=1.0)
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Compiles a loaded task as it was saved (Keras skips a custom `compile` otherwise)."""
        from keras.saving import deserialize_keras_object

        self.compile(**deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def default_loss(self):
        raise NotImplementedError

    def default_metrics(self):
        return None

    # -- export --------------------------------------------------------------------------------

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Writes the serving SavedModel: the endpoints of `serving_endpoints` (raw inputs in;
        see the task), with `kwargs` among the task's `serving_options`.

        Without serving endpoints (a task without its preprocessor), with another `format`
        or with other arguments, this is `keras.Model.export`.
        """
        if (
            format != "tf_saved_model"
            or not self.has_serving_endpoints()
            or set(kwargs) - set(self.serving_options)
        ):
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        return export_task(self, filepath, **kwargs)

    # -- serving, declared by each task ----------------------------------------------------------

    serving_options = ()  # the keyword arguments of `serving_endpoints`

    def has_serving_endpoints(self):
        """Whether the task serves raw inputs (by default: it has a preprocessor)."""
        return getattr(self, "preprocessor", None) is not None

    def serving_endpoints(self):
        """`{name: (function, input_signature)}`: what the task's SavedModel serves (the first
        also as `serving_default`). By default, the preprocessor's `serving_endpoint` over the
        task's float32 outputs, named "serve"."""
        self._require_serving()
        endpoint = self.preprocessor.serving_endpoint(lambda x: outputs_as_float32(self, x))
        return {"serve": endpoint}

    def litert_metadata(self, function):
        """The JSON a device needs beside the task's `.tflite` file of `function` (None: none):
        by default, its preprocessor's `litert_metadata()` for the forward pass."""
        declare = getattr(getattr(self, "preprocessor", None), "litert_metadata", None)
        return declare() if function == "call" and declare is not None else None

    def _require_serving(self):
        if not self.has_serving_endpoints():
            raise ValueError(
                f"export_task: no serving endpoints for a {type(self).__name__} with preprocessor "
                f"{getattr(self, 'preprocessor', None)!r}. Expected: a task built with its "
                "preprocessor (raw inputs in), e.g. a TextClassifierPreprocessor, "
                "FeatureWindowPreprocessor or LanguageModelPreprocessor"
            )

    # -- config ----------------------------------------------------------------------------------

    def get_config(self):
        preprocessor = getattr(self, "preprocessor", None)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessor": None if preprocessor is None else keras.layers.serialize(preprocessor),
            **{key: getattr(self, key) for key in self.config_keys},
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def _as_column(values):
    """Data for `tf.data.Dataset.from_tensor_slices`: strings as an object array."""
    import numpy as np

    if isinstance(values, dict):
        return {key: _as_column(value) for key, value in values.items()}
    if isinstance(values, list | tuple) and values and isinstance(values[0], str | bytes):
        return np.asarray(values, dtype=object)
    return np.asarray(values) if isinstance(values, list | tuple) else values


class SteppedTask(Task):
    """A task on a unidirectional backbone that can also be run one step at a time.

    The state of all recurrent layers is packed into one float32 tensor
    `(batch, S)`: every layer's states (`[h, c]` for an LSTM, `[h]` otherwise)
    concatenated along the last axis, the form a serving endpoint can take
    and return.
    """

    def _state_sizes(self):
        return [[layer.units] * layer.cell.num_states for layer in self.backbone.recurrent_layers]

    @property
    def state_size(self):
        """S, the width of the packed state."""
        return sum(sum(sizes) for sizes in self._state_sizes())

    def _unpack(self, state):
        import tensorflow as tf

        sizes = self._state_sizes()
        flat = tf.split(state, [s for layer_sizes in sizes for s in layer_sizes], axis=-1)
        per_layer, start = [], 0
        for layer_sizes in sizes:
            per_layer.append(flat[start : start + len(layer_sizes)])
            start += len(layer_sizes)
        return per_layer

    @staticmethod
    def _pack(per_layer):
        import tensorflow as tf

        return tf.concat([s for states in per_layer for s in states], axis=-1)

    def initial_state(self, batch_size):
        """The packed zero state for `batch_size` sequences, float32 `(batch_size, S)`."""
        import tensorflow as tf

        tf.debugging.assert_non_negative(batch_size, message="initial_state: batch_size < 0")
        return tf.zeros([batch_size, self.state_size], tf.float32)

    def cells_step(self, x, state):
        """The recurrent layers' cells on one step's inputs `x (batch, features)`:
        `(last layer's output, new packed state)`."""
        new_states = []
        for layer, states in zip(self.backbone.recurrent_layers, self._unpack(state), strict=True):
            x, states = layer.cell(x, list(states))
            new_states.append(states if isinstance(states, (list, tuple)) else [states])
        return x, self._pack(new_states)
