"""The sweep's results: the tidy table of trial metrics, the failed trials, the text
summary and the learning-curve figure.

Files in the sweep directory::

    results.parquet|csv   fraction, seed, mode, strategy, learning_rate, split, level, metric, value
    failures.csv          failed trials: parameters, error, traceback (always written)
    learning_curve.png    test accuracy vs fraction (log x), station and event level
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ... import storage
from .config import LEVELS

#: Columns of ``results.parquet`` / ``results.csv``, in this order.
RESULT_COLUMNS = ("fraction", "seed", "mode", "strategy", "learning_rate", "split", "level", "metric", "value")
FAILURE_COLUMNS = ("fraction", "seed", "mode", "strategy", "learning_rate", "trial", "error", "traceback")
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
FAILURES_CSV = "failures.csv"
CURVE_PNG = "learning_curve.png"


def tidy_results(trials: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> pd.DataFrame:
    """The tidy table of (params, flat metrics) pairs, columns :data:`RESULT_COLUMNS`."""
    rows = []
    for params, metrics in trials:
        rate = metrics.get("learning_rate_used", params["learning_rate"])
        for key, value in metrics.items():
            parts = key.split(".")
            if len(parts) != 3 or not isinstance(value, (int, float)):
                continue
            split, level, metric = parts
            rows.append({"fraction": float(params["fraction"]), "seed": int(params["seed"]), "mode": params["mode"],
                         "strategy": params["strategy"], "learning_rate": float(rate), "split": split,
                         "level": level, "metric": metric, "value": float(value)})
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    if not table.empty:
        table = table.sort_values(["mode", "strategy", "learning_rate", "fraction", "seed", "split", "level", "metric"],
                                  kind="stable").reset_index(drop=True)
    return table


def format_curve(table: pd.DataFrame, split: str = "test") -> str:
    """Text summary: mean (± std over seeds) ``split`` accuracy per fraction, for every
    mode/strategy/learning rate and level, in percent."""
    rows = table[(table["split"] == split) & (table["metric"] == "accuracy")]
    if rows.empty:
        return f"no {split} accuracy in the table"
    several_rates = rows.groupby("mode")["learning_rate"].transform("nunique") > 1
    curve = rows["mode"] + np.where(rows["mode"] == "finetuned", "/" + rows["strategy"], "")
    curve = curve + np.where(several_rates, "/lr" + rows["learning_rate"].map(lambda v: f"{v:g}"), "")
    rows = rows.assign(curve=curve)
    stats = rows.groupby(["fraction", "curve", "level"])["value"].agg(["mean", "std", "count"])
    curves = sorted(rows["curve"].unique(), key=lambda c: (not c.startswith("finetuned"), c))
    columns = [(c, lv) for c in curves for lv in LEVELS]
    width = max(20, *(len(f"{c} {lv}") for c, lv in columns))
    head = [f"{'fraction':>8}"] + [f"{f'{c} {lv}':>{width}}" for c, lv in columns]
    lines = [f"{split} accuracy (%), mean ± std over seeds", "  ".join(head)]
    for fraction in sorted(rows["fraction"].unique()):
        cells = [f"{fraction:>8g}"]
        for c, lv in columns:
            if (fraction, c, lv) not in stats.index:
                cells.append(f"{'-':>{width}}")
                continue
            mean, std, count = stats.loc[(fraction, c, lv)]
            text = f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if count > 1 else "") + f" (n={int(count)})"
            cells.append(f"{text:>{width}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def plot_learning_curve(table: pd.DataFrame, uri: str, split: str = "test") -> str | None:
    """Accuracy vs fraction (log x) for each mode (and strategy / learning rate), mean line
    with the min–max band over seeds; one panel per level. Returns ``uri`` (``None`` when
    the table holds no such rows)."""
    from matplotlib.figure import Figure

    from ...evaluation.plots import write_png

    rows = table[(table["split"] == split) & (table["metric"] == "accuracy")]
    if rows.empty:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, len(LEVELS), sharey=True)
    groups = list(rows.groupby(["mode", "strategy", "learning_rate"], sort=True))
    multi = len(groups) > len(rows["mode"].unique())
    colours = {"finetuned": "tab:blue", "scratch": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for ax, level in zip(axes, LEVELS):
        for k, ((mode, strategy, rate), g) in enumerate(groups):
            g = g[g["level"] == level]
            if g.empty:
                continue
            s = g.groupby("fraction")["value"].agg(["mean", "min", "max", "count"]).sort_index()
            label = "fine-tuned" if mode == "finetuned" else "from scratch"
            if multi:
                label += (f" ({strategy}, lr {rate:g})" if mode == "finetuned" else f" (lr {rate:g})")
            colour = colours.get(mode, "gray")
            ax.plot(s.index, s["mean"], styles[k % len(styles)] if multi else "-", marker="o", color=colour,
                    label=label)
            ax.fill_between(s.index, s["min"], s["max"], color=colour, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("fraction of the target region's training events")
        ax.set_title(f"{level.capitalize()} level")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"{split} accuracy")
    n_seeds = rows["seed"].nunique()
    axes[0].legend(loc="best", fontsize="small",
                   title=f"mean, band: min–max over {n_seeds} seed(s)", title_fontsize="small")
    fig.suptitle(f"Learning curve: {split} accuracy vs amount of target data")
    return write_png(fig, uri)



def read_failures(out_dir: str) -> pd.DataFrame:
    """``failures.csv`` of a sweep directory (empty table when there is none)."""
    uri = storage.join(out_dir, FAILURES_CSV)
    if not storage.exists(uri):
        return pd.DataFrame(columns=list(FAILURE_COLUMNS))
    return storage.read_frame(uri)
