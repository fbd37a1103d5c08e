"""Process settings of raydisc.runtime."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning applies to glibc only")
def test_reuse_freed_array_memory_applies_once_per_process():
    # A fresh interpreter, so the setting is not already made by another test.
    script = ("from raydisc.runtime import reuse_freed_array_memory as r, _MALLOC_TUNED as before\n"
              "print(before, r(), r())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]
