"""The guide's "monitor gradient norms", as an opt-in optimizer wrapper and its metric.

    monitor = rnn_keras.GradientNormMonitor(keras.optimizers.Adam(1e-3, global_clipnorm=1.0))
    model.compile(optimizer=monitor, loss=..., metrics=[..., monitor.metric])

Any model compiled this way reports `gradient_norm` with every step: in the
progress bar, in the per-batch logs that callbacks receive (TensorBoard with
`update_freq=1` plots it per step) and, for the epoch, the last step's value.
No `train_step` is overridden: Keras's own training step hands the gradients to
the optimizer, and the monitor takes their norm on the way through.
"""

import keras
from keras import ops

__all__ = ["GradientNormMonitor", "GradientNorm", "rounded_binary_accuracy"]


@keras.saving.register_keras_serializable(package="rnn_keras")
class GradientNorm(keras.metrics.Metric):
    """Reports the global gradient norm that a `GradientNormMonitor` recorded last.

    It reads the monitor's value and ignores `y_true`/`y_pred`. Get it from
    `GradientNormMonitor.metric` rather than building one. Before the first
    step, and when restored from a saved, compiled model (then it is attached
    to no monitor: compile again with the new monitor's metric), it reports
    NaN. Evaluation logs repeat the last training step's value
    (`val_gradient_norm`), as Keras evaluates every compiled metric.
    """

    def __init__(self, name="gradient_norm", dtype="float32", monitor=None):
        super().__init__(name=name, dtype=dtype)
        # A function, not the monitor itself: the monitor holds this metric, and
        # Keras's saving walks layer, metric and optimizer attributes.
        self._read = (lambda: monitor.gradient_norm) if monitor is not None else None

    def update_state(self, *args, **kwargs):
        pass

    def result(self):
        norm = None if self._read is None else self._read()
        if norm is None:  # detached, or no step applied yet (the monitor builds lazily)
            return ops.convert_to_tensor(float("nan"), dtype=self.dtype)
        return ops.convert_to_tensor(norm.value, dtype=self.dtype)

    def reset_state(self):
        pass

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="rnn_keras")
class GradientNormMonitor(keras.optimizers.Optimizer):
    """An optimizer that records the global norm of the gradients, then lets another apply them.

    The norm is `sqrt(sum_w ||dL/dw||^2)` over every trainable weight, of the
    gradients the training step passes to the optimizer, so it is taken before
    any clipping (`clipnorm`, `global_clipnorm`) that the wrapped optimizer does
    and spikes that clipping hides stay visible. Under `mixed_float16`, Keras
    wraps this optimizer in a `LossScaleOptimizer`, which unscales the gradients
    before they arrive here, so the norm is the unscaled one. Inside a
    `tf.distribute` strategy, each replica holds the gradient of its share of the
    batch; the monitor sums them across replicas (one all-reduce of the
    gradients per step, the cost of monitoring) so that the norm is that of the
    whole batch's gradient, as on one device.

    Args:
        optimizer: the optimizer that applies the gradients (its learning rate,
            iterations and variables are this optimizer's).
        name: the optimizer's name.
    """

    def __init__(self, optimizer, name="gradient_norm_monitor", **kwargs):
        optimizer = keras.optimizers.get(optimizer)
        if isinstance(optimizer, GradientNormMonitor):
            raise ValueError(
                "GradientNormMonitor: `optimizer` is already a GradientNormMonitor. "
                f"Received: optimizer={optimizer!r}"
            )
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.inner_optimizer = optimizer
        self.metric = GradientNorm(monitor=self)
        self.gradient_norm = None

    def build(self, var_list):
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        self.gradient_norm = self.add_variable(
            shape=(),
            initializer="zeros",
            dtype="float32",
            # Every replica computes the same (all-reduced) norm; keep one copy.
            aggregation="only_first_replica",
            name="gradient_norm",
        )
        super().build(var_list)

    @property
    def variables(self):
        return self.inner_optimizer.variables + [self.gradient_norm]

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables)
            self.built = True
        self.gradient_norm.assign(_global_norm(_summed_over_replicas(grads)))
        self.inner_optimizer.apply(grads, trainable_variables)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(
            "GradientNormMonitor records the norm in a variable, so it needs a stateful "
            "training step (the TensorFlow or PyTorch backend)."
        )

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.optimizers.serialize(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        optimizer = keras.optimizers.deserialize(config["optimizer"], custom_objects)
        return cls(optimizer, name=config.get("name", "gradient_norm_monitor"))


def _summed_over_replicas(grads):
    """The dense gradients of the whole batch: summed over a tf.distribute strategy's replicas.

    An embedding's gradient arrives as `tf.IndexedSlices`, whose rows may repeat
    an index; it is made dense so that repeated rows add up before the norm.
    """
    grads = [g for g in grads if g is not None]
    if keras.backend.backend() != "tensorflow":
        return grads
    import tensorflow as tf

    dense = [tf.convert_to_tensor(g) for g in grads]
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return dense
    return context.all_reduce(tf.distribute.ReduceOp.SUM, dense)


def _global_norm(grads):
    squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads]
    return ops.sqrt(ops.sum(ops.stack(squares))) if squares else ops.zeros((), "float32")


@keras.saving.register_keras_serializable(package="rnn_keras")
def rounded_binary_accuracy(y_true, y_pred, threshold=0.5):
    """Binary accuracy against the rounded target, for training on soft labels.

    A soft target (say, a teacher's probability 0.8) counts as the class it leans
    to; a 0/1 label as itself. Use as
    `keras.metrics.MeanMetricWrapper(rounded_binary_accuracy, name="accuracy")`;
    registered, so a `.keras` file compiled with it loads wherever rnn_keras is imported.
    """
    return keras.metrics.binary_accuracy(ops.round(y_true), y_pred, threshold)
