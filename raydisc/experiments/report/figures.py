"""Figures of the experiment report (PNG, via :func:`raydisc.evaluation.plots.write_png`):
grouped accuracy bars and confusion-matrix grids."""
from __future__ import annotations

import math
from itertools import product
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ...evaluation.plots import write_png
from .results import MODELS, TEST_SPLIT, Cells
from .tables import LEVEL_UNITS, MISSING, MODEL_LABELS, STAGE_LABELS, column_label

ACCURACY_Y_FLOOR = 0.5
ACCURACY_Y_STEP = 0.1
STAGE_COLOURS = {"pretrained": "tab:grey", "finetuned": "tab:blue", "target_only": "tab:orange"}
EXTRA_STAGE_COLOUR = "tab:purple"
MODEL_BAR_STYLE = {"best_member": {"alpha": 0.5, "hatch": "//"}, "ensemble": {"alpha": 1.0, "hatch": None}}
BAR_GROUP_WIDTH = 0.84
PANEL_WIDTH_IN = 5.0
PANEL_HEIGHT_IN = 4.4
CONFUSION_MODEL = "ensemble"
CONFUSION_LEVELS = ("event", "station")
CONFUSION_CELL_IN = 2.7
FIGURE_DPI = 110


def _stage_colour(stage: str) -> str:
    return STAGE_COLOURS.get(stage, EXTRA_STAGE_COLOUR)


def plot_accuracy_bars(cells: Cells, archs: Sequence[str], targets: Sequence[str], stages: Sequence[str],
                       level: str, uri: str) -> str:
    """Grouped bars of ``level`` accuracy: a panel per architecture, x = target region,
    bars = stage (colour) × model (hatched = best single, solid = ensemble); a stage not
    run is marked with "–" at the axis. Returns ``uri``."""
    combos = list(product(stages, MODELS))
    values = {(a, t, s, m): cells.get(a, t, s, m, level, "accuracy")
              for a, t in product(archs, targets) for s, m in combos}
    finite = [v for v in values.values() if v is not None and not math.isnan(v)]
    # Accuracies live near the top; start the axis at 0.5 unless something is worse.
    low = min([ACCURACY_Y_FLOOR, *finite])
    y_min = math.floor(low / ACCURACY_Y_STEP) * ACCURACY_Y_STEP
    fig = Figure(figsize=(PANEL_WIDTH_IN * len(archs), PANEL_HEIGHT_IN), layout="constrained")
    axes = fig.subplots(1, len(archs), sharey=True, squeeze=False)[0]
    width = BAR_GROUP_WIDTH / len(combos)
    x = np.arange(len(targets))
    for ax, arch in zip(axes, archs):
        for k, (stage, model) in enumerate(combos):
            offset = (k - (len(combos) - 1) / 2) * width
            heights = np.array([np.nan if (v := values[(arch, t, stage, model)]) is None else v for t in targets])
            ax.bar(x + offset, np.nan_to_num(heights, nan=0.0), width, color=_stage_colour(stage),
                   edgecolor="black", linewidth=0.5, **MODEL_BAR_STYLE.get(model, {}))
            for xi, h in zip(x + offset, heights):
                if np.isnan(h):
                    ax.text(xi, y_min, MISSING, ha="center", va="bottom")
        ax.set_xticks(x, labels=targets)
        ax.set_ylim(y_min, 1.0)
        ax.set_xlabel("Target region (held out)")
        ax.set_title(arch)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"{level.capitalize()}-level accuracy [fraction of {LEVEL_UNITS[level]}]")
    handles = [Patch(facecolor=_stage_colour(s), edgecolor="black", label=column_label(s, m),
                     **MODEL_BAR_STYLE.get(m, {})) for s, m in combos]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(stages))
    fig.suptitle(f"{level.capitalize()}-level accuracy on each target region's test split")
    return write_png(fig, uri, dpi=FIGURE_DPI)


def plot_confusion_grid(cells: Cells, arch: str, targets: Sequence[str], stages: Sequence[str], model: str,
                        level: str, names: Sequence[str], uri: str) -> str:
    """Confusion matrices of one architecture and model: a row of panels per stage, a
    column per target region. Colour = row-normalised % (recall per true class, so
    imbalanced regions compare); text = count and %. Returns ``uri``."""
    fig = Figure(figsize=(CONFUSION_CELL_IN * len(targets) + 1.2, CONFUSION_CELL_IN * len(stages) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(stages), len(targets), squeeze=False)
    ticks = np.arange(len(names))
    image = None
    for (i, stage), (j, target) in product(enumerate(stages), enumerate(targets)):
        ax = axes[i, j]
        ax.set_title(f"{target}: {STAGE_LABELS.get(stage, stage)}", fontsize="medium")
        cm = cells.confusion(arch, target, stage, model, level, names)
        if cm is None:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{MISSING}\nnot run", ha="center", va="center", transform=ax.transAxes)
            continue
        rows = cm.sum(axis=1, keepdims=True)
        pct = np.divide(100 * cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)
        image = ax.imshow(np.nan_to_num(pct), cmap="Blues", vmin=0, vmax=100)
        for (t, p), count in np.ndenumerate(cm):
            share = "n/a" if np.isnan(pct[t, p]) else f"{pct[t, p]:.0f}%"
            ax.text(p, t, f"{count:.0f}\n{share}", ha="center", va="center",
                    color="white" if pct[t, p] > 60 else "black")
        ax.set_xticks(ticks, labels=names)
        ax.set_yticks(ticks, labels=names)
        if i == len(stages) - 1:
            ax.set_xlabel("Predicted class")
        if j == 0:
            ax.set_ylabel("True class")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="% of true class")
    fig.suptitle(f"{arch}: {MODEL_LABELS.get(model, model)}, {level} level, {TEST_SPLIT} split "
                 f"(counts in {LEVEL_UNITS[level]})")
    return write_png(fig, uri, dpi=FIGURE_DPI)
