"""Timing that makes a measured figure repeatable: the median over repeats."""

import statistics
import time

__all__ = ["median_seconds"]


def median_seconds(run_steps, *, steps, repeats, warmup_steps=2):
    """The median over `repeats` timings of `run_steps(steps)` of the seconds per step.

    `run_steps(warmup_steps)` runs first, untimed.
    """
    run_steps(warmup_steps)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        timings.append((time.perf_counter() - start) / steps)
    return statistics.median(timings)
