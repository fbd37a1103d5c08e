"""The sweep's progress lines on the driver: one when a trial starts, finishes or fails.

Imports Ray Tune, so only :func:`~raydisc.experiments.sweep.run_sweep` imports this
module (``raydisc --help`` and ``import raydisc.experiments.sweep`` stay free of it).
"""
from __future__ import annotations

from typing import Callable

from ray.tune import Callback

from ...progress import last_line
from .config import trial_name

# Where each running sweep's lines go, by token. The callback is pickled with the run
# config (Tune keeps it in the experiment's tuner.pkl), so it holds a token rather than
# the driver's function, as in raydisc.training.ensemble.
SINKS: dict[str, Callable[[str], None]] = {}


class SweepProgress(Callback):
    """Tune callback that passes one line per trial event to ``SINKS[token]``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def _say(self, text: str) -> None:
        sink = SINKS.get(self.token)
        if sink:
            sink(text)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(f"started  {trial_name(trial.config['trial'])}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        if "test.station.accuracy" in r:
            self._say(f"finished {trial_name(trial.config['trial'])}: {r['train.event.n_train_events']} events, "
                      f"test accuracy station {r['test.station.accuracy']:.3f} event "
                      f"{r['test.event.accuracy']:.3f} ({r.get('train.run.trial_seconds', float('nan')):.0f}s)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say(f"FAILED   {trial_name(trial.config['trial'])}: {_short_error(trial)}")


def _short_error(trial) -> str:
    try:
        text = trial.get_pickled_error() or trial.get_error()
    except Exception:  # noqa: BLE001 - best effort for a progress line
        text = None
    return last_line(str(text)) if text else "see failures.csv"
