"""experiments/long_range.py: baseline, flags, a --quick run (the library: test_diagnostics.py)."""

import itertools
import json
import math

import keras
import long_range
import numpy as np
import pytest

import rnn_keras
from rnn_keras.datasets import adding_problem


def test_constant_predictor_scores_one_sixth():
    _, targets = adding_problem(100, 20000, 5)
    assert long_range.constant_mse(targets) == pytest.approx(1 / 6, abs=0.006)  # ~4 std. errors


def test_main_lstm_is_the_forget_bias_one_orthogonal_variant():
    """The initialisation part reuses the main LSTM run as (bias 1, orthogonal)."""
    cell = rnn_keras.LSTM(4).cell
    assert cell.unit_forget_bias is True
    assert isinstance(cell.recurrent_initializer, keras.initializers.Orthogonal)


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--lengths", "0,50"], ["--lengths", "integers >= 2", "'0,50'"]),
        (["--lengths", "50,50"], ["--lengths", "distinct", "'50,50'"]),
        (["--cells", "simple,rnn"], ["--cells", "simple, lstm, gru", "'simple,rnn'"]),
        (["--units", "-3"], ["--units", "an integer >= 1", "'-3'"]),
        (["--lr", "0"], ["--lr", "a number > 0", "'0'"]),
        (["--steps", "150", "--eval-every", "100"], ["--steps", "--eval-every=100", "150"]),
    ],
)
def test_bad_flags_are_rejected_with_a_message(flags, named, capsys):
    with pytest.raises(SystemExit) as error:
        long_range.parse_args(flags)
    assert error.value.code == 2
    message = capsys.readouterr().err
    for text in named:
        assert text in message


@pytest.mark.integration
def test_quick_run_end_to_end(tmp_path):
    long_range.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = json.loads((tmp_path / "config.json").read_text())["args"]
    lengths, steps = config["lengths"], config["steps"]
    assert lengths == [10, 20] and config["cells"] == ["simple", "lstm", "gru"]

    results = metrics["results"]
    assert {(r["cell"], r["length"]) for r in results} == set(
        itertools.product(("simple", "lstm", "gru"), lengths)
    )
    assert len(results) == 6
    for r in results:
        assert isinstance(r["test_mse"], float) and 0 < r["test_mse"] < 10
        assert isinstance(r["seconds"], float) and r["seconds"] > 0
        solved = r["solved_at_step"]
        assert solved is None or (isinstance(solved, int) and 0 < solved <= steps)
        assert r["steps"] == (solved if solved else steps)
        assert r["curve"]["step"][0] == 0 and r["curve"]["step"][-1] == r["steps"]
        assert r["curve"]["test_mse"][-1] == r["test_mse"]

    targets = np.concatenate([adding_problem(t, config["test_size"], 1337)[1] for t in lengths])
    assert metrics["baseline_mse"] == pytest.approx(long_range.constant_mse(targets), rel=1e-6)
    assert metrics["baseline_mse"] == pytest.approx(1 / 6, abs=0.02)  # 4,000 targets: ~6 s.e.

    flow = metrics["gradient_flow"]
    assert flow["length"] == 20 and flow["distance"] == list(range(20))
    assert set(flow["cells"]) == {"simple", "lstm", "gru"}
    for measured in flow["cells"].values():
        for phase in ("initial", "trained"):
            assert len(measured[phase]) == 20
            assert all(math.isfinite(n) and n >= 0 for n in measured[phase])
            assert measured[phase][0] > 0

    clipping = metrics["clipping"]
    assert clipping["spectral_radius"] == pytest.approx(config["clip_gain"], rel=1e-4)
    runs = clipping["runs"]
    assert [(run["optimizer"], run["clipnorm"]) for run in runs] == [
        ("adam", config["clipnorm"]),
        ("adam", None),
        ("sgd", config["clipnorm"]),
        ("sgd", None),
    ]
    for run in runs:
        assert len(run["gradient_norms"]) == config["clip_steps"]
        assert run["max_gradient_norm"] == max(n for n in run["gradient_norms"] if n is not None)
        # Same seed: the same starting weights and first batch, whatever the optimizer.
        assert run["curve"]["test_mse"][0] == runs[0]["curve"]["test_mse"][0]
        assert run["gradient_norms"][0] == runs[0]["gradient_norms"][0] > 0

    variants = metrics["initialization"]
    assert {(v["unit_forget_bias"], v["recurrent_initializer"]) for v in variants} == set(
        itertools.product((True, False), ("orthogonal", "glorot_uniform"))
    )
    for v in variants:
        assert v["length"] in lengths
        assert v["solved_at_step"] is None or isinstance(v["solved_at_step"], int)
    assert metrics["machine"]["cpu_cores"] >= 1

    for name in ("test_mse.png", "gradient_flow.png", "clipping.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000
