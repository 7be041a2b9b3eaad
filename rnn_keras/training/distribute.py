"""tf.distribute helpers: a strategy from its name, who is chief, each worker's run folder,
and training and evaluation under several workers (`trainer`), which Keras 3.15's `fit`
cannot do as it is (keras-team/keras#20585; tests/test_distribute.py
holds a canary that fails once Keras fixes it, so this workaround can go).

    strategy = rnn_keras.distribute.strategy("mirrored")
    with strategy.scope():
        model = ...; model.compile(...)
    rnn_keras.distribute.trainer(model).fit(data)
"""

import hashlib
import shutil
from pathlib import Path

STRATEGIES = ("default", "mirrored", "multi-worker")
_strategies = {}  # the run's strategy by name: one per process, as TensorFlow wants


def strategy(name="default"):
    """The run's `tf.distribute` strategy, by name (made once per process).

    "default": TensorFlow's default strategy (one device); "mirrored":
    `MirroredStrategy()` over every local device; "multi-worker":
    `MultiWorkerMirroredStrategy()`, whose cluster and task come from `$TF_CONFIG`.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _strategies:
        if _strategies:
            raise ValueError(
                f"strategy: one strategy per process. Received: {name!r} after "
                f"{next(iter(_strategies))!r}"
            )
        make = {
            "mirrored": tf.distribute.MirroredStrategy,
            "multi-worker": tf.distribute.MultiWorkerMirroredStrategy,
        }[name]
        _strategies[name] = make()
    return _strategies[name]


def multi_worker(strategy):
    """Whether `strategy` spans several processes (a MultiWorkerMirroredStrategy cluster)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1


def is_chief(strategy):
    """Whether this process writes the run's record: the only process, or in a cluster the
    `chief` task, else worker 0 (TensorFlow's rule)."""
    if not multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


WORKER_FOLDER = "workertemp_"  # + task id: a non-chief worker's folder in the run folder


def worker_run_dir(strategy, run_dir):
    """This process's folder of a run in `run_dir`, which every worker is given.

    TensorFlow's saving pattern: the chief works in `run_dir` (and writes the
    exports); every other worker in `run_dir/workertemp_<task id>`, made as a
    copy of the chief's folder (without exports, TensorBoard logs and other
    workers' folders), so a resumed run resumes every worker from the chief's
    checkpoints and records. Returns once every worker has its folder (a
    barrier), so the chief writes again only after the copies. Delete a
    worker's folder at the end with `remove_worker_run_dir`.
    """
    run_dir = Path(run_dir)
    if not multi_worker(strategy):
        return run_dir
    if not is_chief(strategy):
        worker_dir = run_dir / f"{WORKER_FOLDER}{strategy.cluster_resolver.task_id}"
        if worker_dir.exists():
            shutil.rmtree(worker_dir)
        ignore = shutil.ignore_patterns(f"{WORKER_FOLDER}*", "tensorboard*", "export", "*.tmp")
        shutil.copytree(run_dir, worker_dir, ignore=ignore)
        run_dir = worker_dir
    barrier(strategy)
    return run_dir


def remove_worker_run_dir(run_dir):
    """Deletes `run_dir` if it is a non-chief worker's temporary folder; returns whether it
    was."""
    run_dir = Path(run_dir)
    if not run_dir.name.startswith(WORKER_FOLDER):
        return False
    shutil.rmtree(run_dir)
    return True


def barrier(strategy):
    """Returns once every worker of `strategy` has called it (one all-reduce)."""
    import tensorflow as tf

    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)


def weights_digest(model):
    """sha256 of `model`'s weights, in order: equal digests, equal weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def trainer(model):
    """The model that `fit` and `evaluate` run for `model`: `model` itself, except under a
    MultiWorkerMirroredStrategy of several workers, where Keras 3.15 cannot train or
    evaluate it as it is (keras-team/keras#20585).

    There Keras 3.15's `fit` and `evaluate` first reduce a whole batch of data
    across the workers (to learn its shapes), which fails for any nested batch,
    such as `(ids, labels)` of numbers, and they reduce every step's scalar logs
    along a batch axis that scalars lack. The trainer is a functional view of
    `model` (its layers and weights) built outside the strategy's scope, for
    which Keras skips that first reduction; its step logs get a batch axis of 1,
    and its logs are averaged over the replicas (the compiled metrics are
    already the whole batch's; the loss is each process's share's, averaged over
    the workers). It is compiled as `model` is, with new optimizer and metric
    objects in the scope. tests/test_distribute.py holds a canary that fails
    once Keras's own `fit` works there.

    Under a MirroredStrategy in one process, Keras's `fit` works as it is once the
    inputs are numbers (the tasks map their preprocessors in the input
    pipeline, so strings never reach the replicas): `model` is returned.
    """
    import keras
    import keras.ops
    import tensorflow as tf

    strategy = model.distribute_strategy
    if not multi_worker(strategy):
        return model
    if tf.distribute.has_strategy():
        raise RuntimeError(
            "trainer: a model of several workers trains outside its strategy's scope. "
            "Expected: no strategy scope. Received: a call inside strategy.scope()"
        )

    def step_logs(logs):  # Keras reduces these step logs along axis 0
        return {k: keras.ops.reshape(v, (1,)) for k, v in logs.items()}

    class ReplicatedTrainer(keras.Model):
        @property
        def distribute_strategy(self):
            return strategy

        def train_step(self, data):
            return step_logs(super().train_step(data))

        def test_step(self, data):
            return step_logs(super().test_step(data))

        def get_metrics_result(self):  # in a step (replica context), and after an epoch
            results = super().get_metrics_result()
            values = list(results.values())
            if tf.distribute.in_cross_replica_context():
                values = [strategy.reduce("MEAN", value, axis=None) for value in values]
            else:
                values = tf.distribute.get_replica_context().all_reduce("MEAN", values)
            return dict(zip(results, values, strict=True))

    view = ReplicatedTrainer(model.input, model.output, name=f"{model.name}_trainer")
    with strategy.scope():
        view.compile_from_config(model.get_compile_config())
    return view


def evaluate(model, dataset):
    """`model.evaluate(dataset)` (through `trainer(model)`): the loss and compiled metrics."""
    return trainer(model).evaluate(dataset, verbose=0)


def predict(model, dataset):
    """`model.predict(dataset)`; under a strategy of several replicas, on one device of each
    process, which predicts the whole of `dataset` (Keras 3.15 cannot distribute it: see
    `trainer`)."""
    import keras

    if model.distribute_strategy.num_replicas_in_sync > 1:
        model = keras.Model(model.input, model.output)  # outside the scope: one device
    return model.predict(dataset, verbose=0)
