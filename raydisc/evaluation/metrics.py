"""Classification metrics for station-level and event-level verdicts.

Inputs everywhere: ``y_true`` ``(n,)`` integer class indices, ``probs`` ``(n, n_classes)``
class probabilities (rows summing to 1, e.g. a soft vote or the output of
:func:`raydisc.ensemble.voting.aggregate_events`). The predicted class is the argmax of
``probs`` (lowest index on ties). All values are dimensionless.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

REPORT_COLUMNS = ("model", "level", "metric", "class", "value")
ALL_CLASSES = "all"
"""Value of the ``class`` column for metrics that are not per class."""

_LOG_LOSS_FLOOR = 1e-12

# Hand-written rather than scikit-learn's (a few numpy lines, NaN not 0 for undefined metrics, no runtime
# dependency); tests/test_evaluation.py proves them equal to scikit-learn's on random data.


def _check(y_true, probs, class_names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (n, n_classes >= 2), got {p.shape}")
    if y.shape != (p.shape[0],):
        raise ValueError(f"y_true must have shape ({p.shape[0]},) to match probs, got {y.shape}")
    if p.shape[0] == 0:
        raise ValueError("no recordings to evaluate")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true holds class indices outside [0, {p.shape[1]})")
    if class_names is not None and len(class_names) != p.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {p.shape[1]} probability columns")
    return y.astype(np.int64), p


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts; rows are the true class, columns the predicted."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with NaN where den == 0 (an undefined metric is reported as such, not as 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def classification_report(y_true, probs, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix.

    Returns a dict::

        n, accuracy, balanced_accuracy (mean recall over classes present), macro_f1
        (mean F1 over classes with a defined F1), log_loss (mean -ln p(true class),
        p floored at 1e-12), expected_calibration_error (top-label, 10 bins),
        class_names, per_class {name: {precision, recall, f1, support}},
        confusion_matrix (list of lists; rows true, columns predicted)

    precision = TP/(TP+FP) and recall = TP/(TP+FN) are NaN when their denominator is 0;
    F1 = 2TP/(2TP+FP+FN) is NaN only when the class neither occurs nor is predicted.
    """
    y, p = _check(y_true, probs, class_names)
    n_classes = p.shape[1]
    cm = confusion_matrix(y, p.argmax(axis=1), n_classes)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    p_true = p[np.arange(len(y)), y]
    return {
        "n": int(len(y)),
        "accuracy": float(tp.sum() / len(y)),
        "balanced_accuracy": float(np.nanmean(recall)),
        "macro_f1": float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan"),
        "log_loss": float(-np.log(np.maximum(p_true, _LOG_LOSS_FLOOR)).mean()),
        "expected_calibration_error": reliability_curve(y, p)["ece"],
        "class_names": list(class_names),
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
    }


def report_table(report: dict[str, Any], model: str, level: str, **extra: Any) -> pd.DataFrame:
    """Tidy rows ``(model, level, metric, class, value)`` of a :func:`classification_report`.

    Overall metrics have ``class == "all"``; per-class metrics and support carry the
    class name; the confusion matrix becomes rows ``metric == "predicted_as:<name>"``
    with ``class`` the true class and ``value`` the count. ``extra`` keyword arguments
    (``region=``, ``fraction=``, ``seed=`` ...) are added as constant columns after the
    five standard ones, so tables of many runs concatenate into one.
    """
    rows: list[tuple[str, str, float]] = []
    for key in ("n", "accuracy", "balanced_accuracy", "macro_f1", "log_loss", "expected_calibration_error"):
        rows.append((key, ALL_CLASSES, float(report[key])))
    for name, values in report["per_class"].items():
        for key in ("precision", "recall", "f1", "support"):
            rows.append((key, name, float(values[key])))
    names = report["class_names"]
    for t, row in enumerate(report["confusion_matrix"]):
        for c, count in enumerate(row):
            rows.append((f"predicted_as:{names[c]}", names[t], float(count)))
    df = pd.DataFrame([(model, level, *row) for row in rows], columns=list(REPORT_COLUMNS))
    for key, value in extra.items():
        df[key] = value
    return df


def reliability_curve(y_true, probs, n_bins: int = 10, positive_class: int | None = None) -> dict[str, Any]:
    """Reliability (calibration) curve in ``n_bins`` equal-width bins on [0, 1].

    With ``positive_class=None`` (default) the top-label confidence (the largest class
    probability) is binned against whether the prediction is correct; with an integer it
    is the probability of that class against whether the recording belongs to it.

    Returns a dict of numpy arrays plus the ECE:

    * ``bin_edges`` ``(n_bins + 1,)``; the last bin includes 1.0;
    * ``mean_predicted`` ``(n_bins,)``: mean probability in the bin (NaN if empty);
    * ``observed`` ``(n_bins,)``: fraction correct / fraction of positive class (NaN if empty);
    * ``count`` ``(n_bins,)``: recordings in the bin;
    * ``ece``: expected calibration error, sum over bins of count/n * |observed - mean_predicted|.
    """
    y, p = _check(y_true, probs)
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    if positive_class is None:
        score = p.max(axis=1)
        hit = (p.argmax(axis=1) == y).astype(np.float64)
    else:
        if not 0 <= positive_class < p.shape[1]:
            raise ValueError(f"positive_class {positive_class} outside [0, {p.shape[1]})")
        score = p[:, positive_class]
        hit = (y == positive_class).astype(np.float64)
    edges = np.arange(n_bins + 1) / n_bins
    # Bin k holds scores with k <= score * n_bins < k + 1 (1.0 joins the last bin);
    # floor(score * n_bins) avoids comparing against rounded edges such as 0.6000000000000001.
    idx = np.clip(np.floor(score * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    mean_predicted = _ratio(np.bincount(idx, weights=score, minlength=n_bins), count)
    observed = _ratio(np.bincount(idx, weights=hit, minlength=n_bins), count)
    gap = np.where(count > 0, np.abs(observed - mean_predicted), 0.0)
    return {
        "bin_edges": edges,
        "mean_predicted": mean_predicted,
        "observed": observed,
        "count": count,
        "ece": float((count * gap).sum() / len(y)),
    }


__all__ = [
    "ALL_CLASSES",
    "REPORT_COLUMNS",
    "classification_report",
    "confusion_matrix",
    "reliability_curve",
    "report_table",
]
