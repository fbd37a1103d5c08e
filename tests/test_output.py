"""What a person reads: the demo's steps, run through the CLI as `make demo` runs them,
print no traceback, no deprecation warning, no line of Ray's C++ log, no long figures
and a bounded number of lines each.

Each command runs in a subprocess with its output in a pipe (as in `make demo > log`),
so this is the real console output, Ray's included; each starts its own local Ray.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

from raydisc.progress import Progress

TINY_HPARAMS = json.dumps({"channels": [4, 8], "dense_units": 8, "pooled_shape": [1, 2]})

# `make demo` at 40 events, 2 members, 2 epochs printed 6, 36, 7, 9 (evaluation, inside
# jobs/pretrain.py) and 8 lines for three regions; here two regions. The bounds leave
# room for periodic progress lines on a slow machine, not for Ray's per-task or
# per-epoch output.
MAX_LINES = {"generate": 10, "preprocess": 50, "train": 15, "evaluate": 20, "reprocess": 15}
LONG_FIGURE = re.compile(r"\d\.\d{5,}")
# Ray's C++ core writes lines like "[2026-12-04 19:02:48,639 E 370 370] core_worker.cc:2465: ...".
# One is let through: Ray 2.60 prints, for every Ray Data actor pool (evaluation's),
# that an actor with arguments in the object store may fail to restart
# (ray-project/ray#53727); only the deprecated `ray_remote_args` of map_batches could
# turn restarts off, and the actor pool is what evaluation should use.
RAY_CORE_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [DIWEF] \d+ \d+\] \w+\.cc:\d+:"
                          r"(?! Actor with class name: 'MapWorker\(.*has constructor arguments in the object store)",
                          re.MULTILINE)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """``{step: CompletedProcess}`` of the demo's steps on two tiny regions."""
    root = tmp_path_factory.mktemp("output")
    archive, shards, run, out = (str(root / name) for name in ("archive", "shards", "run", "relabelled"))
    steps = {
        "generate": ["generate", archive, "--regions", "alpine,basin", "--events", "6", "--seed", "3"],
        "preprocess": ["preprocess", archive, shards, "--events-per-shard", "3"],
        "train": ["train", shards, run, "--regions", "alpine,basin", "--hparams", TINY_HPARAMS, "--members", "2",
                  "--epochs", "1", "--batch-size", "32", "--cpus-per-worker", "0.5"],
        "evaluate": ["evaluate", f"{run}/bundle", shards, "--no-plots"],
        "reprocess": ["reprocess", f"{run}/bundle", out, "--archive", archive],
    }
    # Not the test session's cluster: each command starts its own, as a user's would.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    results = {}
    for step, argv in steps.items():
        results[step] = subprocess.run([sys.executable, "-m", "raydisc.cli", *argv], capture_output=True, text=True,
                                       env=env, timeout=300)
        if results[step].returncode != 0:
            break  # the later steps need this one's output
    return results


@pytest.mark.parametrize("step", list(MAX_LINES))
def test_a_demo_step_prints_a_short_readable_story(outputs, step):
    assert step in outputs, "an earlier step failed"
    result = outputs[step]
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "Traceback" not in text, text
    assert "deprecat" not in text.lower(), text
    assert "\r" not in text, "a progress bar was redrawn into a pipe"
    assert not RAY_CORE_LOG.search(text), f"Ray's C++ log reached the console:\n{text}"
    lines = text.splitlines()
    assert len(lines) <= MAX_LINES[step], text
    assert not LONG_FIGURE.search(text), f"unrounded figure: {LONG_FIGURE.search(text).group()} in\n{text}"


def test_an_error_is_one_line_with_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "raydisc.cli", "train", str(tmp_path / "missing"), str(tmp_path / "run"),
                             "--regions", "alpine"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("raydisc train: error: ")


def test_progress_in_a_log_is_a_line_at_the_end_not_a_redrawn_bar():
    stream = io.StringIO()  # not a terminal
    with Progress("stage", total=3, unit="shards", stream=stream) as bar:
        for _ in range(3):
            bar.update(note="last: alpine")
    assert stream.getvalue().splitlines() == ["stage: 3/3 shards, done in 0 s  (last: alpine)"]
