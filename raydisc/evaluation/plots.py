"""Evaluation figures written as PNG to a URI (local path or object storage).

Figures are built with :class:`matplotlib.figure.Figure` directly (Agg canvas), never
through ``pyplot``: no global figure state, no GUI backend, safe inside Ray workers.
Each function returns the URI it wrote.
"""
from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .. import storage
from .metrics import reliability_curve


def write_png(fig: Figure, uri: str, dpi: int = 120) -> str:
    """Render ``fig`` as PNG at ``dpi`` dots per inch and write it atomically to ``uri``
    (local path or object storage); returns ``uri``. Shared by every raydisc figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    storage.write_bytes_atomic(uri, buf.getvalue())
    return uri


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]] | np.ndarray, class_names: Sequence[str], uri: str,
    title: str = "Confusion matrix", unit: str = "recordings",
) -> str:
    """Two panels: counts, and row-normalised percentages (recall per true class).

    ``confusion``: ``(C, C)`` counts, rows true class, columns predicted (as in
    ``classification_report(...)["confusion_matrix"]``). ``unit`` names what is counted
    (``"recordings"`` at station level, ``"events"`` at event level).
    """
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion must be ({len(class_names)}, {len(class_names)}), got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100 * cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ticks = np.arange(len(class_names))
    panels = (
        (cm, f"Counts ({unit})", unit, "{:.0f}", None),
        (pct, "Row-normalised (% of true class)", "% of true class", "{:.1f}%", 100),
    )
    for k, (values, subtitle, cbar_label, fmt, vmax) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        im = ax.imshow(np.nan_to_num(values), cmap="Blues", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=ax, shrink=0.85, label=cbar_label)
        top = np.nanmax(values) if np.isfinite(values).any() else 0
        for (i, j), v in np.ndenumerate(values):
            text = "n/a" if np.isnan(v) else fmt.format(v)
            ax.text(j, i, text, ha="center", va="center", color="white" if top and v > 0.6 * top else "black")
        ax.set_xticks(ticks, labels=class_names)
        ax.set_yticks(ticks, labels=class_names)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(subtitle)
    fig.suptitle(title)
    return write_png(fig, uri)


def plot_reliability(
    curves: Mapping[str, Mapping[str, Any]] | Mapping[str, Any], uri: str,
    title: str = "Reliability diagram", xlabel: str = "Predicted probability of the predicted class (confidence)",
) -> str:
    """Reliability diagram: observed frequency against mean predicted probability per
    bin, with the diagonal of perfect calibration, and the bin counts below.

    ``curves``: one :func:`~raydisc.evaluation.metrics.reliability_curve` result, or a
    mapping ``label -> curve`` to overlay several (e.g. ensemble vs. best member).
    """
    if "bin_edges" in curves:
        curves = {"model": curves}
    fig = Figure(figsize=(6, 6.5), layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for label, curve in curves.items():
        edges = np.asarray(curve["bin_edges"])
        centers = 0.5 * (edges[:-1] + edges[1:])
        ok = np.asarray(curve["count"]) > 0
        ax.plot(np.asarray(curve["mean_predicted"])[ok], np.asarray(curve["observed"])[ok], marker="o",
                label=f"{label} (ECE {curve['ece']:.3f})")
        ax_n.bar(centers, curve["count"], width=np.diff(edges), alpha=0.5, edgecolor="black", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Observed frequency (fraction correct)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax_n.set_xlabel(xlabel + " [dimensionless]")
    ax_n.set_ylabel("Count (recordings)")
    return write_png(fig, uri)


def plot_reliability_from_probs(y_true, probs: Mapping[str, np.ndarray], uri: str, n_bins: int = 10,
                                title: str = "Reliability diagram") -> str:
    """Convenience: compute :func:`reliability_curve` for each ``label -> probs`` and plot."""
    return plot_reliability({k: reliability_curve(y_true, p, n_bins=n_bins) for k, p in probs.items()}, uri, title)


def plot_spread_histogram(
    spread, correct, uri: str, title: str = "Ensemble spread of correct and incorrect predictions",
    n_bins: int = 20,
) -> str:
    """Histograms of the ensemble spread (:func:`~raydisc.ensemble.voting.ensemble_spread`)
    for correctly and incorrectly classified recordings, on shared bins.

    ``spread``: ``(n,)``; ``correct``: ``(n,)`` booleans.
    """
    spread = np.asarray(spread, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if spread.shape != correct.shape or spread.ndim != 1:
        raise ValueError(f"spread and correct must be 1-D of equal length, got {spread.shape} and {correct.shape}")
    top = max(float(spread.max(initial=0.0)), 1e-6)
    bins = np.linspace(0.0, top, n_bins + 1)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for mask, label, color in ((correct, "correct", "tab:blue"), (~correct, "incorrect", "tab:red")):
        ax.hist(spread[mask], bins=bins, alpha=0.6, color=color, label=f"{label} (n={int(mask.sum())})")
    ax.set_xlabel("Ensemble spread: std over members of p(predicted class) [dimensionless]")
    ax.set_ylabel("Count (recordings)")
    ax.set_title(title)
    ax.legend()
    return write_png(fig, uri)


def plot_coverage_accuracy(
    curves: Mapping[str, Mapping[str, Any]], uri: str, target_accuracy: float | None = None,
    thresholds: Mapping[str, float | None] | None = None, title: str = "Coverage and accuracy of automatic labels",
) -> str:
    """Accuracy of the automatically labelled events against their share (coverage), one
    line per model, with the target accuracy as a horizontal line and each model's
    chosen operating point marked.

    ``curves``: ``label -> coverage_accuracy_curve`` result (``coverage``, ``accuracy``
    arrays, :func:`raydisc.ensemble.triage.coverage_accuracy_curve`); ``thresholds``:
    ``label -> confidence threshold`` to mark (None: not reached, no mark).
    """
    fig = Figure(figsize=(7, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        coverage, accuracy = np.asarray(curve["coverage"]), np.asarray(curve["accuracy"])
        (line,) = ax.step(np.concatenate([[0.0], coverage]), np.concatenate([[accuracy[0]], accuracy]),
                          where="pre", label=label)
        t = (thresholds or {}).get(label)
        if t is not None:
            k = int(np.flatnonzero(np.asarray(curve["threshold"]) >= t)[-1])
            ax.plot(coverage[k], accuracy[k], "o", color=line.get_color(),
                    label=f"{label}: confidence >= {t:.3f}, {100 * coverage[k]:.1f}% automatic")
    if target_accuracy is not None:
        ax.axhline(target_accuracy, color="grey", linestyle="--", linewidth=1,
                   label=f"target accuracy {100 * target_accuracy:g}%")
    ax.set_xlim(0, 1.01)
    ax.set_xlabel("Coverage: share of events labelled automatically [dimensionless]")
    ax.set_ylabel("Accuracy of the automatic labels [dimensionless]")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    return write_png(fig, uri)


__all__ = ["plot_confusion_matrix", "plot_coverage_accuracy", "plot_reliability", "plot_reliability_from_probs", "plot_spread_histogram"]
