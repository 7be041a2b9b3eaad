"""Measuring tools: diagnostics of gradients through time, throughput benchmarks, and the
baselines each experiment compares its recurrent network with.

    diagnostics.py          gradient norms through time, spectral radius, learning curves
    benchmarking.py         throughput of rnn_keras, Keras and PyTorch layers
    speech_baselines.py     DTW nearest neighbour, logistic regression, confusion pictures
    music_baselines.py      roll statistics, independent and previous-frame models
    forecast_baselines.py   persistence, seasonal naive, ridge; errors per horizon
"""

from rnn_keras.evaluation import (
    benchmarking,
    diagnostics,
    forecast_baselines,
    music_baselines,
    speech_baselines,
)

__all__ = [
    "benchmarking",
    "diagnostics",
    "forecast_baselines",
    "music_baselines",
    "speech_baselines",
]
