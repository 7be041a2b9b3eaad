"""Training: runs that survive being killed, distribution, recipes and gradient monitoring.

fit.py          resumable_fit, TimeBudget, saved_step, atomic_replace, run records
distribute.py   strategies, workers' folders, the multi-worker trainer
recipes.py      n-gram teachers, pseudo-labels, distillation, LM pretraining
monitoring.py   GradientNormMonitor, GradientNorm, rounded_binary_accuracy
"""

from rnn_keras.training import distribute, fit, monitoring, recipes
from rnn_keras.training.fit import (
    TimeBudget,
    atomic_replace,
    history_dict,
    machine_info,
    plot_history,
    resumable_fit,
    saved_step,
    write_json,
)

__all__ = [
    "distribute",
    "fit",
    "monitoring",
    "recipes",
    "TimeBudget",
    "atomic_replace",
    "history_dict",
    "machine_info",
    "plot_history",
    "resumable_fit",
    "saved_step",
    "write_json",
]
