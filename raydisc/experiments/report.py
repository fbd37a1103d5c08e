"""Markdown report of a leave-one-region-out experiment, rebuilt from its stored tables
only (no training, no Ray).

Read from the experiment directory ``RUN_DIR`` (a local path or an ``s3://`` URI)::

    results/metrics.parquet   tidy results (``results/metrics.csv`` is the fallback): the
                              concatenation of raydisc.evaluation.metrics.report_table
                              outputs, one row per (architecture, target, stage, model,
                              level, metric, class):
        model         "best_member" (best single member) | "ensemble" (soft vote)
        level         "station" (one verdict per recording) | "event"
        metric        n, accuracy, balanced_accuracy, macro_f1, log_loss,
                      expected_calibration_error (class "all"); precision, recall, f1,
                      support (class = class name); "predicted_as:<name>" (class = true
                      class, value = count)
        class, value  as above; accuracies are fractions
        architecture  "spectrogram_cnn" | "waveform_cnn"
        target        the held-out region the row is evaluated on (its test split)
        stage         "pretrained" (trained on the other regions, not fine-tuned) |
                      "finetuned" (that model fine-tuned on the target) |
                      "target_only" (trained from scratch on the target alone)
        split, regions, event_rule, bundle_id   carried along from the evaluation
    experiment.json           optional: the experiment's configs (shown as settings)
    sweep/results.parquet     optional: fine-tuning data sweep, columns fraction, seed,
                              mode ("finetuned" | "scratch"), strategy, split, level,
                              metric, value
    sweep/learning_curve.png  optional: the sweep's plot (copied next to the report)

Written: the report (default ``RUN_DIR/report.md``) and its PNG figures in the folder
``<report stem>_figures/`` beside it (``RUN_DIR/report_figures/`` by default), linked
relatively so the pair can be moved or downloaded together.
"""
from __future__ import annotations

import json
import math
import posixpath
from itertools import product
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .. import storage
from ..evaluation.metrics import ALL_CLASSES, REPORT_COLUMNS
from ..evaluation.plots import write_png
from ..labels import CLASS_NAMES

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
STAGE_LABELS = {"pretrained": "pretrained only", "finetuned": "fine-tuned", "target_only": "target only"}
STAGE_DESCRIPTIONS = {
    "pretrained": "trained on the other two regions, evaluated on the target without fine-tuning",
    "finetuned": "the pretrained model fine-tuned on the target region",
    "target_only": "trained from scratch on the target region alone",
}
MODELS = ("best_member", "ensemble")
MODEL_LABELS = {"best_member": "best single", "ensemble": "ensemble"}
LEVELS = ("station", "event")
LEVEL_UNITS = {"station": "recordings", "event": "events"}
LEVEL_TITLES = {"station": "Station level (one verdict per recording)",
                "event": "Event level (station verdicts combined per event)"}

MISSING = "–"
"""Cell of a stage/model that is not in the results (not run yet)."""
UNDEFINED = "n/a"
"""Cell of a metric that is in the results but undefined (NaN, e.g. recall of an absent class)."""

# The study's claim: fine-tuning plus an ensemble beats a single pretrained model, most of
# all where one class is rare.
HEADLINE_LEVEL = "event"
HEADLINE_AFTER = ("finetuned", "ensemble")
HEADLINE_BEFORE = ("pretrained", "best_member")
MINORITY_LEVEL = "station"

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

SETTINGS_MAX_ROWS = 60
SETTINGS_VALUE_CHARS = 90

SWEEP_MODES = ("finetuned", "scratch")
SWEEP_MODE_LABELS = {"finetuned": "fine-tuned", "scratch": "from scratch"}
#: Plain accuracy and, because a target region may have very few examples of one class
#: (where predicting the majority class scores high), balanced accuracy.
SWEEP_METRICS = ("accuracy", "balanced_accuracy")


# ----------------------------------------------------------------------------- reading

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


class _Cells:
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


def _ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """``preferred`` first (all of them, present or not: absent ones render as missing),
    then anything else found, sorted, so an unexpected value is shown, not dropped."""
    return [*preferred, *sorted(set(values) - set(preferred))]


def _class_names(frame: pd.DataFrame) -> list[str]:
    found = set(frame.loc[frame["class"] != ALL_CLASSES, "class"])
    found |= {m[len(CONFUSION_PREFIX):] for m in frame["metric"].unique() if m.startswith(CONFUSION_PREFIX)}
    return [c for c in CLASS_NAMES if c in found] + sorted(found - set(CLASS_NAMES)) or list(CLASS_NAMES)


def _minority(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, tuple[str, int, int]]:
    """``target -> (minority class, its support, all test recordings)`` at station level;
    ties go to the class listed first in :data:`~raydisc.labels.CLASS_NAMES`."""
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


# ----------------------------------------------------------------------------- formatting

def _pct(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return UNDEFINED
    return f"{100 * value:.1f}"


def _count(values: Sequence[float]) -> str:
    """Distinct counts joined by "/" (they differ only if stages saw different test sets)."""
    return "/".join(f"{v:.0f}" for v in values) if values else MISSING


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], n_left: int) -> str:
    """A Markdown table; the first ``n_left`` columns left-aligned (labels), the rest
    right-aligned (numbers)."""
    align = ["---" if i < n_left else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _column_label(stage: str, model: str) -> str:
    return f"{STAGE_LABELS.get(stage, stage)}: {MODEL_LABELS.get(model, model)}"


# ----------------------------------------------------------------------------- sections

def _accuracy_section(cells: _Cells, archs, targets, stages, figures: Mapping[str, str]) -> list[str]:
    out = ["## Accuracy on the target region's test split", "",
           f"Accuracy in percent. Columns: stage × model; n = test {LEVEL_UNITS['station']} or "
           f"{LEVEL_UNITS['event']} of the target region.", ""]
    for level in LEVELS:
        header = ["architecture", "target", f"n ({LEVEL_UNITS[level]})",
                  *(_column_label(s, m) for s, m in product(stages, MODELS))]
        rows = [[arch, target, _count(cells.distinct(arch, target, level, "n", stages=stages)),
                 *(_pct(cells.get(arch, target, s, m, level, "accuracy")) for s, m in product(stages, MODELS))]
                for arch, target in product(archs, targets)]
        out += [f"### {LEVEL_TITLES[level]}", "", _table(header, rows, n_left=2), ""]
        if level in figures:
            out += [f"![{level}-level accuracy by target region]({figures[level]})", ""]
    return out


def _minority_section(cells: _Cells, archs, targets, stages, minority) -> list[str]:
    out = ["## Recall of each target region's minority class", "",
           f"Minority class = the class with the fewest {MINORITY_LEVEL}-level test "
           f"{LEVEL_UNITS[MINORITY_LEVEL]} in that target region. Recall in percent "
           "(share of the minority class's test examples classified as such); "
           "support = minority examples of all test examples at that level.", ""]
    header = ["architecture", "target", "level", "minority class", "support",
              *(_column_label(s, m) for s, m in product(stages, MODELS))]
    rows = []
    for arch, target, level in product(archs, targets, LEVELS):
        if target not in minority:
            rows.append([arch, target, level, MISSING, MISSING, *([MISSING] * len(stages) * len(MODELS))])
            continue
        cls = minority[target][0]
        support = cells.distinct(arch, target, level, "support", cls, stages=stages)
        n = cells.distinct(arch, target, level, "n", stages=stages)
        rows.append([arch, target, level, cls, f"{_count(support)} of {_count(n)}",
                     *(_pct(cells.get(arch, target, s, m, level, "recall", cls)) for s, m in product(stages, MODELS))])
    return out + [_table(header, rows, n_left=4), ""]


def _headline_section(cells: _Cells, archs, minority) -> list[str]:
    out = ["## Headline check", ""]
    if not minority:
        return out + [f"Cannot be checked: the results hold no {MINORITY_LEVEL}-level support rows.", ""]
    target, (cls, k, n) = min(minority.items(), key=lambda item: (item[1][1] / max(item[1][2], 1), item[0]))
    after, before = HEADLINE_AFTER, HEADLINE_BEFORE
    after_label = _column_label(*after)
    before_label = _column_label(*before)
    out += [f"Target region with the fewest examples of one class: **{target}** ({cls}: {k} of {n} test "
            f"{LEVEL_UNITS[MINORITY_LEVEL]}, {100 * k / max(n, 1):.1f} %). Does the {HEADLINE_LEVEL} accuracy "
            f"of \"{after_label}\" exceed that of \"{before_label}\"?", ""]
    for arch in archs:
        a = cells.get(arch, target, *after, HEADLINE_LEVEL, "accuracy")
        b = cells.get(arch, target, *before, HEADLINE_LEVEL, "accuracy")
        absent = [label for label, v in ((after_label, a), (before_label, b)) if v is None or math.isnan(v)]
        if absent:
            out.append(f"- **{arch}**: cannot be checked yet: no {HEADLINE_LEVEL} accuracy for "
                       f"{' and '.join(absent)} ({MISSING}).")
            continue
        n_events = cells.distinct(arch, target, HEADLINE_LEVEL, "n", stages=(after[0], before[0]))
        # With few test events one event moves accuracy by whole percentage points.
        grain = f" (one event = {100 / n_events[0]:.1f} percentage points)" if len(n_events) == 1 else ""
        verdict = ("yes → the study's headline effect holds" if a > b
                   else "no → the study's headline effect does not hold")
        out.append(f"- **{arch}**: fine-tuning + ensemble: {_pct(a)} % vs pretrained best single: {_pct(b)} % "
                   f"on {_count(n_events)} test {LEVEL_UNITS[HEADLINE_LEVEL]}{grain}: {verdict}.")
    return out + [""]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix or "(value)", value


def _settings_section(run_dir: str) -> list[str]:
    uri = storage.join(run_dir, EXPERIMENT_JSON)
    if not storage.exists(uri):
        return []
    out = ["## Settings", "", f"From `{EXPERIMENT_JSON}` (nested keys joined with dots; long values shortened).", ""]
    try:
        config = json.loads(storage.read_bytes(uri))
    except (ValueError, UnicodeDecodeError) as err:
        return out + [f"Could not be read as JSON: {err}.", ""]
    items = list(_flatten(config))
    rows = []
    for key, value in items[:SETTINGS_MAX_ROWS]:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > SETTINGS_VALUE_CHARS:
            text = text[:SETTINGS_VALUE_CHARS - 1] + "…"
        rows.append([f"`{key}`", text])
    out += [_table(["setting", "value"], rows, n_left=2), ""]
    if len(items) > SETTINGS_MAX_ROWS:
        out += [f"… and {len(items) - SETTINGS_MAX_ROWS} more settings in `{EXPERIMENT_JSON}`.", ""]
    return out


def _groups_section(run_dir: str) -> list[str]:
    """Station accuracy by component set and pick source (``results/groups.parquet``)."""
    uri = storage.join(run_dir, GROUPS_PARQUET)
    if not storage.exists(uri):
        return []
    frame = storage.read_frame(uri)
    frame = frame[frame["group"].isin(("components", "pick_source"))]
    out = ["## Station accuracy by component set and pick source", "",
           "Test-split recordings of each target region grouped by the components they have (`Z`: vertical "
           "only) and where their window's P arrival came from (`catalog` pick or `predicted` from the origin).",
           ""]
    rows = []
    keys = ["architecture", "target", "stage", "group", "value"]
    for key, part in frame.groupby(keys, sort=True):
        by_model = part.set_index("model")
        rows.append([*key[:3], f"{key[3]} = {key[4]}", int(by_model["recordings"].iloc[0]),
                     _pct(by_model.loc["ensemble", "accuracy"]), _pct(by_model.loc["best_member", "accuracy"])])
    header = ["architecture", "target", "stage", "recordings of", "n", "ensemble", "best single"]
    return out + [_table(header, rows, n_left=4), ""]


def _sweep_table(rows: pd.DataFrame, metric: str) -> list[str]:
    """Mean ± std over seeds of one test-split ``metric`` per fraction (and strategy,
    when several were swept) x mode x level."""
    if rows.empty:
        return [f"`{SWEEP_TABLE}` holds no {TEST_SPLIT}-split {metric} rows.", ""]
    by_strategy = "strategy" in rows.columns and rows["strategy"].nunique() > 1
    row_keys = ["fraction", "strategy"] if by_strategy else ["fraction"]
    stats = rows.groupby([*row_keys, "mode", "level"])["value"].agg(["mean", "std", "count"])
    modes = [m for m in _ordered(rows["mode"].unique(), SWEEP_MODES) if m in set(rows["mode"])]
    header = [*row_keys, *(f"{SWEEP_MODE_LABELS.get(m, m)}, {lv}" for m, lv in product(modes, LEVELS))]
    body = []
    for key in sorted(set(stats.index.droplevel(["mode", "level"]))):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for mode, level in product(modes, LEVELS):
            idx = (*key, mode, level)
            if idx not in stats.index:
                cells.append(MISSING)
                continue
            mean, std, count = stats.loc[idx]
            cells.append(f"{100 * mean:.1f}" if count < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}")
        body.append([*(f"{k:g}" if isinstance(k, float) else k for k in key), *cells])
    return [f"{TEST_SPLIT.capitalize()} {metric.replace('_', ' ')} in percent, mean ± standard deviation over seeds "
            f"({rows['seed'].nunique()} seed(s)); fraction = share of the target region's fine-tuning "
            "data used; from scratch = trained on that share alone.", "",
            _table(header, body, n_left=len(row_keys)), ""]


def _sweep_section(run_dir: str, figures_dir: str, figures_link: str) -> list[str]:
    table_uri, plot_uri = storage.join(run_dir, SWEEP_TABLE), storage.join(run_dir, SWEEP_PLOT)
    if not storage.exists(table_uri):
        return []
    sweep = storage.read_frame(table_uri)
    out = ["## Amount of fine-tuning data", ""]
    needed = ("fraction", "seed", "mode", "split", "level", "metric", "value")
    missing = [c for c in needed if c not in sweep.columns]
    if missing:
        return out + [f"`{SWEEP_TABLE}` lacks column(s) {', '.join(missing)}; no table.", ""]
    for metric in SWEEP_METRICS:
        out += _sweep_table(sweep[(sweep["split"] == TEST_SPLIT) & (sweep["metric"] == metric)], metric)
    if storage.exists(plot_uri):
        name = posixpath.basename(SWEEP_PLOT)
        # Copied so the report's relative links also resolve when it is written elsewhere.
        storage.write_bytes_atomic(storage.join(figures_dir, name), storage.read_bytes(plot_uri))
        out += [f"![Learning curve: accuracy against amount of fine-tuning data]({figures_link}/{name})", ""]
    return out


# ----------------------------------------------------------------------------- figures

def _stage_colour(stage: str) -> str:
    return STAGE_COLOURS.get(stage, EXTRA_STAGE_COLOUR)


def _plot_accuracy_bars(cells: _Cells, archs: Sequence[str], targets: Sequence[str], stages: Sequence[str],
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
    handles = [Patch(facecolor=_stage_colour(s), edgecolor="black", label=_column_label(s, m),
                     **MODEL_BAR_STYLE.get(m, {})) for s, m in combos]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(stages))
    fig.suptitle(f"{level.capitalize()}-level accuracy on each target region's test split")
    return write_png(fig, uri, dpi=FIGURE_DPI)


def _plot_confusion_grid(cells: _Cells, arch: str, targets: Sequence[str], stages: Sequence[str], model: str,
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


# ----------------------------------------------------------------------------- entry point

def write_report(run_dir: str, out: str | None = None) -> str:
    """Write the Markdown report of the experiment in ``run_dir`` to ``out`` (default
    ``run_dir/report.md``) and its figures to ``<out stem>_figures/`` beside it; return
    the report's URI.

    Sections: settings (if ``experiment.json`` exists); accuracy per architecture × target
    region with columns stage × model, one table per level; minority-class recall; the
    headline check (fine-tuned ensemble vs pretrained best single member, event level, in
    the region with the rarest class); station accuracy by component set and pick source
    (if ``results/groups.parquet`` exists); confusion matrices; the fine-tuning data sweep
    (if ``sweep/results.parquet`` exists). Stages not run show as "–". Raises
    ``FileNotFoundError`` when ``run_dir`` holds no results table.
    """
    frame = load_results(run_dir)
    out = out or storage.join(run_dir, REPORT_NAME)
    stem = posixpath.splitext(posixpath.basename(out))[0]
    figures_link = f"{stem}{FIGURES_SUFFIX}"
    figures_dir = storage.join(posixpath.dirname(out), figures_link)

    cells = _Cells(frame)
    archs = sorted(frame["architecture"].unique())
    targets = sorted(frame["target"].unique())
    stages = _ordered(frame["stage"].unique(), STAGES)
    names = _class_names(frame)
    minority = _minority(frame, names)

    accuracy_figures = {}
    for level in LEVELS:
        name = f"accuracy_{level}.png"
        _plot_accuracy_bars(cells, archs, targets, stages, level, storage.join(figures_dir, name))
        accuracy_figures[level] = f"{figures_link}/{name}"

    lines = ["# Leave-one-region-out experiment: report", "",
             f"Rebuilt from `{frame.attrs['source']}` ({len(archs)} architecture(s), target regions "
             f"{', '.join(targets)}). Every number is measured on the target region's {TEST_SPLIT} split. "
             f"A \"{MISSING}\" marks a stage that has not been run (yet); \"{UNDEFINED}\" a metric that is undefined.",
             ""]
    lines += [f"- **{STAGE_LABELS.get(s, s)}**: {STAGE_DESCRIPTIONS.get(s, 'stage ' + s)}" for s in stages]
    lines += ["- **best single**: the ensemble member with the lowest validation loss; "
              "**ensemble**: soft vote (mean probability) of all members.", ""]
    if "event_rule" in frame.columns and frame["event_rule"].nunique() == 1:
        lines += [f"Event verdicts combine an event's station probabilities by `{frame['event_rule'].iloc[0]}`.", ""]
    lines += _settings_section(run_dir)
    lines += _accuracy_section(cells, archs, targets, stages, accuracy_figures)
    lines += _minority_section(cells, archs, targets, stages, minority)
    lines += _headline_section(cells, archs, minority)
    lines += _groups_section(run_dir)

    lines += ["## Confusion matrices", "",
              f"{MODEL_LABELS[CONFUSION_MODEL].capitalize()}, rows of panels = stage, columns = target region.", ""]
    for arch, level in product(archs, CONFUSION_LEVELS):
        name = f"confusion_{arch}_{CONFUSION_MODEL}_{level}.png"
        _plot_confusion_grid(cells, arch, targets, stages, CONFUSION_MODEL, level, names,
                             storage.join(figures_dir, name))
        lines += [f"![{arch}, {level} level confusion matrices]({figures_link}/{name})", ""]

    lines += _sweep_section(run_dir, figures_dir, figures_link)
    storage.write_bytes_atomic(out, ("\n".join(lines).rstrip() + "\n").encode())
    return out


__all__ = ["load_results", "write_report"]
