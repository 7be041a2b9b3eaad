"""Helpers shared by the tests: cells in keras.layers.RNN with random weights."""

import keras
import numpy as np

import rnn_keras

CELL_NAMES = ("simple", "lstm", "gru")


def randomize_weights(layer, seed, scale=0.5):
    """Give every weight of `layer` random normal values (the default init is too tame)."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [scale * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


def build_rnn(cell_name, units, input_dim, seed=0, dtype=None, **rnn_kwargs):
    """A built `keras.layers.RNN` over an rnn_keras cell, with random weights."""
    cell_kwargs = {"dtype": dtype} if dtype else {}
    layer = keras.layers.RNN(
        rnn_keras.get_cell(cell_name)(units, **cell_kwargs), dtype=dtype, **rnn_kwargs
    )
    layer.build((None, None, input_dim))
    randomize_weights(layer, seed)
    return layer


_BLOCK_RNN_KERAS = """
import sys
sys.modules["rnn_keras"] = None  # from here on, `import rnn_keras` raises ImportError
try:
    import rnn_keras  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("rnn_keras is importable in the fresh process")
"""


_SERVER_LOOP = """
import contextlib, io, json, os, sys, traceback
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
protocol = sys.stdout
sys.stdout = sys.stderr  # what the snippets print goes to the log, not into the protocol
for line in sys.stdin:
    job = json.loads(line)
    namespace = {"request": job["payload"], "response": None}
    try:
        os.chdir(job["cwd"])
        exec(compile(job["code"], "<snippet>", "exec"), namespace)
        reply = {"response": namespace["response"]}
    except BaseException:
        reply = {"error": traceback.format_exc()}
    protocol.write(json.dumps(reply) + "\\n")
    protocol.flush()
"""


class _Server:
    """One long-lived Python process that cannot import rnn_keras, per test process: it runs
    snippets one after another, each in a namespace of its own, so the TensorFlow import
    (seconds) is paid once instead of once per check."""

    def __init__(self):
        import subprocess
        import sys
        import tempfile

        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BLOCK_RNN_KERAS + _SERVER_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def run(self, code, payload, cwd, timeout):
        import json
        import select

        self.process.stdin.write(json.dumps({"code": code, "payload": payload, "cwd": str(cwd)}))
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self.log.seek(0)
            raise AssertionError(f"the snippet server died or timed out: {self.log.read()[-4000:]}")
        return json.loads(line)


_SERVERS = []


def run_without_rnn_keras(code, payload, cwd, timeout=600, fresh=False):
    """Run `code` in a Python process that cannot import rnn_keras.

    `payload` goes to the code as `request` (through JSON); whatever the code stores in
    `response` comes back, decoded from JSON. By default the code runs in this test
    process's snippet server (a process that has never imported rnn_keras, reused from
    check to check); `fresh=True` starts a new process for it, for code that changes the
    process for good (e.g. blocks TensorFlow's import).
    """
    import json
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(code)
    if not fresh:
        if not _SERVERS or _SERVERS[0].process.poll() is not None:
            _SERVERS[:] = [_Server()]
        reply = _SERVERS[0].run(code, json.loads(json.dumps(payload)), cwd, timeout)
        assert "error" not in reply, reply.get("error")
        return reply["response"]

    program = (
        _BLOCK_RNN_KERAS
        + "import json, os\nos.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        + "request = json.load(sys.stdin)\nresponse = None\n"
        + code
        + "\nprint('@@RESPONSE@@' + json.dumps(response))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    marker = result.stdout.rindex("@@RESPONSE@@")
    return json.loads(result.stdout[marker + len("@@RESPONSE@@") :])


def run_quick(script, run_dir, *flags, timeout=900):
    """Runs `script --quick --out run_dir *flags` in a subprocess; returns its metrics.json."""
    import json
    import subprocess
    import sys

    command = [sys.executable, str(script), "--quick", "--out", str(run_dir), *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=run_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


def start_quick(script, run_dir, *flags, log, env=None):
    """Starts `script --quick --out run_dir *flags` in a subprocess writing to the file `log`.

    Returns the `subprocess.Popen`; `log` gets stdout and stderr.
    """
    import os
    import subprocess
    import sys

    command = [sys.executable, str(script), "--quick", "--out", str(run_dir), *flags]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    with open(log, "w") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=run_dir.parent, env=env
        )


def kill_after_first_epoch(processes, backup_dir, timeout=600):
    """SIGKILLs `processes` once `backup_dir` holds the backup written after epoch 1.

    Reads Keras's BackupAndRestore record (`training_metadata.json`, written after the
    weights). Fails if a process ends first.
    """
    import json
    import time

    metadata = backup_dir / "training_metadata.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"ended before it was killed: {process.args}"
        try:
            if json.loads(metadata.read_text())["epoch"] >= 1:
                break
        except (OSError, ValueError):  # not there yet, or being written
            pass
        time.sleep(0.05)
    else:
        raise AssertionError(f"no backup of epoch 1 in {backup_dir} after {timeout} s")
    for process in processes:
        process.kill()  # SIGKILL
    for process in processes:
        process.wait()
