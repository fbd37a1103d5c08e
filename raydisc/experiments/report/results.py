"""Reading a leave-one-region-out experiment's stored results: where its tables live,
their key columns, and lookups of one value per (architecture, target, stage, model,
level, metric, class). The table layout is described in :mod:`raydisc.experiments.report`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ... import storage
from ...evaluation.metrics import ALL_CLASSES, REPORT_COLUMNS

RESULTS_PARQUET = "results/metrics.parquet"
GROUPS_PARQUET = "results/groups.parquet"
RESULTS_CSV = "results/metrics.csv"
EXPERIMENT_JSON = "experiment.json"
SWEEP_TABLE = "sweep/results.parquet"
SWEEP_PLOT = "sweep/learning_curve.png"
REPORT_NAME = "report.md"
FIGURES_SUFFIX = "_figures"

EXPERIMENT_COLUMNS = ("architecture", "target", "stage")
KEY_COLUMNS = ("architecture", "target", "stage", "model", "level", "metric", "class")
TEST_SPLIT = "test"
CONFUSION_PREFIX = "predicted_as:"

STAGES = ("pretrained", "finetuned", "target_only")
MODELS = ("best_member", "ensemble")
LEVELS = ("station", "event")
#: Level at which a target region's minority class is counted.
MINORITY_LEVEL = "station"


def load_results(run_dir: str) -> pd.DataFrame:
    """The experiment's results table (see the module docstring for its columns),
    restricted to the test split when a ``split`` column says which rows are test rows,
    with repeated (architecture, target, stage, model, level, metric, class) rows reduced
    to the last one (a stage re-run and appended replaces the earlier result).

    Raises ``FileNotFoundError`` naming the expected path when there is no table, and
    ``ValueError`` when columns are missing.
    """
    parquet, csv = storage.join(run_dir, RESULTS_PARQUET), storage.join(run_dir, RESULTS_CSV)
    if storage.exists(parquet):
        uri = parquet
    elif storage.exists(csv):
        uri = csv
    else:
        raise FileNotFoundError(f"no results table at {parquet} (nor {csv}): has the experiment been run?")
    frame = storage.read_frame(uri)
    missing = [c for c in (*REPORT_COLUMNS, *EXPERIMENT_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{uri}: missing column(s) {', '.join(missing)}")
    if "split" in frame.columns and (frame["split"] == TEST_SPLIT).any():
        frame = frame[frame["split"] == TEST_SPLIT]
    frame = frame.astype({c: str for c in KEY_COLUMNS})
    frame = frame.drop_duplicates(list(KEY_COLUMNS), keep="last").reset_index(drop=True)
    frame.attrs["source"] = uri
    return frame


class Cells:
    """Lookup of ``value`` by (architecture, target, stage, model, level, metric, class):
    ``None`` when the row is absent (not run), NaN when it is present but undefined."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._values = frame.set_index(list(KEY_COLUMNS))["value"].astype(float).to_dict()

    def get(self, arch: str, target: str, stage: str, model: str, level: str, metric: str,
            cls: str = ALL_CLASSES) -> float | None:
        return self._values.get((arch, target, stage, model, level, metric, cls))

    def distinct(self, arch: str, target: str, level: str, metric: str, cls: str = ALL_CLASSES,
              stages: Sequence[str] = STAGES) -> list[float]:
        """The distinct values of a metric over stages and models (e.g. the test-set size)."""
        found = [self.get(arch, target, s, m, level, metric, cls) for s in stages for m in MODELS]
        return sorted({v for v in found if v is not None and not math.isnan(v)})

    def confusion(self, arch: str, target: str, stage: str, model: str, level: str,
                  names: Sequence[str]) -> np.ndarray | None:
        """``(C, C)`` counts, rows true class, columns predicted; ``None`` if not run."""
        cm = np.array([[self.get(arch, target, stage, model, level, f"{CONFUSION_PREFIX}{p}", t)
                        for p in names] for t in names], dtype=object)
        if all(v is None for v in cm.flat):
            return None
        return np.array([[0.0 if v is None else float(v) for v in row] for row in cm])


def ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """``preferred`` first (all of them, present or not: absent ones render as missing),
    then anything else found, sorted, so an unexpected value is shown, not dropped."""
    return [*preferred, *sorted(set(values) - set(preferred))]


def class_names(frame: pd.DataFrame) -> list[str]:
    """The run's classes in its label scheme's order: the order in which the table holds
    them (:func:`raydisc.evaluation.metrics.report_table` writes per-class rows in the
    bundle's class order), then any class named only by a confusion column, sorted."""
    names = list(dict.fromkeys(frame.loc[frame["class"] != ALL_CLASSES, "class"]))
    predicted = {m[len(CONFUSION_PREFIX):] for m in frame["metric"].unique() if m.startswith(CONFUSION_PREFIX)}
    return names + sorted(predicted - set(names))


def minority_classes(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, tuple[str, int, int]]:
    """``target -> (minority class, its support, all test recordings)`` at station level;
    ties go to the class listed first in ``names`` (:func:`class_names`: the run's scheme order)."""
    rows = frame[(frame["level"] == MINORITY_LEVEL) & (frame["metric"] == "support")]
    # Every stage is evaluated on the same test split, so the supports agree; max() only
    # guards against a stage evaluated on a partial split.
    support = rows.groupby(["target", "class"])["value"].max()
    rank = {c: i for i, c in enumerate(names)}
    out = {}
    for target, per_class in support.groupby(level="target"):
        per_class = per_class.droplevel("target")
        cls = min(per_class.index, key=lambda c: (per_class[c], rank.get(c, len(rank)), c))
        out[target] = (cls, int(per_class[cls]), int(per_class.sum()))
    return out
