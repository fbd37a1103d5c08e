"""The command line: help texts, the preprocessing step, and clear errors."""
import subprocess
import sys

import pytest

from raydisc.cli import main


def test_help_explains_each_step():
    out = subprocess.run([sys.executable, "-m", "raydisc.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("generate", "preprocess", "summary"):
        assert command in out
    out = subprocess.run([sys.executable, "-m", "raydisc.cli", "preprocess", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--window-reference" in out and "rejects" in out


def test_preprocess_and_summary(ray_cluster, tiny_archive, tmp_path, capsys):
    shards = str(tmp_path / "shards")
    assert main(["preprocess", tiny_archive, shards, "--regions", "craton", "--events-per-shard", "5"]) == 0
    out = capsys.readouterr().out
    assert "craton" in out and "shards written: 2" in out
    assert main(["summary", shards]) == 0
    assert "craton" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "/tmp/x", "--regions", "atlantis"], "unknown region"),
        (["generate", "/tmp/x", "--events", "0"], "--events must be"),
        (["summary", "/nonexistent/shards"], "not a shard folder"),
    ],
)
def test_bad_arguments_give_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_archive_gives_a_clear_error(ray_cluster, tmp_path, capsys):
    assert main(["preprocess", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "no regions found" in capsys.readouterr().err


def test_bad_config_file_gives_a_clear_error(ray_cluster, tiny_archive, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{"freqmax_hz": 30.0}')
    assert main(["preprocess", tiny_archive, str(tmp_path / "out"), "--config", str(config)]) == 2
    assert "Nyquist" in capsys.readouterr().err
