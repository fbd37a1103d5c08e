"""bench/gpu_check.py on a machine without a GPU: its CPU rows run, and its mismatch check
fails the run when the probabilities differ by more than the tolerance."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_check.py"


def run(*args: str, members: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--members", str(members), *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU fallback path; a GPU machine runs bench/gpu_check.sh")
def test_cpu_fallback_prints_the_cpu_rows_and_agrees():
    done = run()
    assert done.returncode == 0, done.stderr
    assert "GPU: none" in done.stdout
    cpu_row = next(line for line in done.stdout.splitlines() if line.startswith("cpu "))
    rates = [float(v) for v in cpu_row.split()[1:3]]
    assert all(rate > 0 for rate in rates), cpu_row
    assert "agree with the unfused CPU reference" in done.stdout


def test_mismatch_above_tolerance_fails():
    # Five members fused into one grouped network sum in another order than the members
    # one by one: the probabilities differ by float32 rounding (~3e-8), above 1e-12.
    done = run("--tolerance", "1e-12", members=5)
    assert done.returncode == 1
    assert "MISMATCH" in done.stderr
