"""Markdown sections of the experiment report: accuracy, minority-class recall, the
headline check, settings, station groups and the fine-tuning data sweep. Numbers are
shown in percent with one decimal; absent cells as :data:`MISSING`, undefined ones as
:data:`UNDEFINED`.
"""
from __future__ import annotations

import json
import math
import posixpath
from itertools import product
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from ... import storage
from .results import (EXPERIMENT_JSON, GROUPS_PARQUET, LEVELS, MINORITY_LEVEL, MODELS, SWEEP_PLOT, SWEEP_TABLE,
                      TEST_SPLIT, Cells, ordered)

STAGE_LABELS = {"pretrained": "pretrained only", "finetuned": "fine-tuned", "target_only": "target only"}
STAGE_DESCRIPTIONS = {
    "pretrained": "trained on the other two regions, evaluated on the target without fine-tuning",
    "finetuned": "the pretrained model fine-tuned on the target region",
    "target_only": "trained from scratch on the target region alone",
}
MODEL_LABELS = {"best_member": "best single", "ensemble": "ensemble"}
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

SETTINGS_MAX_ROWS = 60
SETTINGS_VALUE_CHARS = 90

SWEEP_MODES = ("finetuned", "scratch")
SWEEP_MODE_LABELS = {"finetuned": "fine-tuned", "scratch": "from scratch"}
#: Plain accuracy and, because a target region may have very few examples of one class
#: (where predicting the majority class scores high), balanced accuracy.
SWEEP_METRICS = ("accuracy", "balanced_accuracy")


def pct(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return UNDEFINED
    return f"{100 * value:.1f}"


def count(values: Sequence[float]) -> str:
    """Distinct counts joined by "/" (they differ only if stages saw different test sets)."""
    return "/".join(f"{v:.0f}" for v in values) if values else MISSING


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], n_left: int) -> str:
    """A Markdown table; the first ``n_left`` columns left-aligned (labels), the rest
    right-aligned (numbers)."""
    align = ["---" if i < n_left else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def column_label(stage: str, model: str) -> str:
    return f"{STAGE_LABELS.get(stage, stage)}: {MODEL_LABELS.get(model, model)}"


# ----------------------------------------------------------------------------- sections

def accuracy_section(cells: Cells, archs, targets, stages, figures: Mapping[str, str]) -> list[str]:
    out = ["## Accuracy on the target region's test split", "",
           f"Accuracy in percent. Columns: stage × model; n = test {LEVEL_UNITS['station']} or "
           f"{LEVEL_UNITS['event']} of the target region.", ""]
    for level in LEVELS:
        header = ["architecture", "target", f"n ({LEVEL_UNITS[level]})",
                  *(column_label(s, m) for s, m in product(stages, MODELS))]
        rows = [[arch, target, count(cells.distinct(arch, target, level, "n", stages=stages)),
                 *(pct(cells.get(arch, target, s, m, level, "accuracy")) for s, m in product(stages, MODELS))]
                for arch, target in product(archs, targets)]
        out += [f"### {LEVEL_TITLES[level]}", "", table(header, rows, n_left=2), ""]
        if level in figures:
            out += [f"![{level}-level accuracy by target region]({figures[level]})", ""]
    return out


def minority_section(cells: Cells, archs, targets, stages, minority) -> list[str]:
    out = ["## Recall of each target region's minority class", "",
           f"Minority class = the class with the fewest {MINORITY_LEVEL}-level test "
           f"{LEVEL_UNITS[MINORITY_LEVEL]} in that target region. Recall in percent "
           "(share of the minority class's test examples classified as such); "
           "support = minority examples of all test examples at that level.", ""]
    header = ["architecture", "target", "level", "minority class", "support",
              *(column_label(s, m) for s, m in product(stages, MODELS))]
    rows = []
    for arch, target, level in product(archs, targets, LEVELS):
        if target not in minority:
            rows.append([arch, target, level, MISSING, MISSING, *([MISSING] * len(stages) * len(MODELS))])
            continue
        cls = minority[target][0]
        support = cells.distinct(arch, target, level, "support", cls, stages=stages)
        n = cells.distinct(arch, target, level, "n", stages=stages)
        rows.append([arch, target, level, cls, f"{count(support)} of {count(n)}",
                     *(pct(cells.get(arch, target, s, m, level, "recall", cls)) for s, m in product(stages, MODELS))])
    return out + [table(header, rows, n_left=4), ""]


def headline_section(cells: Cells, archs, minority) -> list[str]:
    out = ["## Headline check", ""]
    if not minority:
        return out + [f"Cannot be checked: the results hold no {MINORITY_LEVEL}-level support rows.", ""]
    target, (cls, k, n) = min(minority.items(), key=lambda item: (item[1][1] / max(item[1][2], 1), item[0]))
    after, before = HEADLINE_AFTER, HEADLINE_BEFORE
    after_label = column_label(*after)
    before_label = column_label(*before)
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
        out.append(f"- **{arch}**: fine-tuning + ensemble: {pct(a)} % vs pretrained best single: {pct(b)} % "
                   f"on {count(n_events)} test {LEVEL_UNITS[HEADLINE_LEVEL]}{grain}: {verdict}.")
    return out + [""]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix or "(value)", value


def settings_section(run_dir: str) -> list[str]:
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
    out += [table(["setting", "value"], rows, n_left=2), ""]
    if len(items) > SETTINGS_MAX_ROWS:
        out += [f"… and {len(items) - SETTINGS_MAX_ROWS} more settings in `{EXPERIMENT_JSON}`.", ""]
    return out


def groups_section(run_dir: str) -> list[str]:
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
                     pct(by_model.loc["ensemble", "accuracy"]), pct(by_model.loc["best_member", "accuracy"])])
    header = ["architecture", "target", "stage", "recordings of", "n", "ensemble", "best single"]
    return out + [table(header, rows, n_left=4), ""]


def _sweep_table(rows: pd.DataFrame, metric: str) -> list[str]:
    """Mean ± std over seeds of one test-split ``metric`` per fraction (and strategy,
    when several were swept) x mode x level."""
    if rows.empty:
        return [f"`{SWEEP_TABLE}` holds no {TEST_SPLIT}-split {metric} rows.", ""]
    by_strategy = "strategy" in rows.columns and rows["strategy"].nunique() > 1
    row_keys = ["fraction", "strategy"] if by_strategy else ["fraction"]
    stats = rows.groupby([*row_keys, "mode", "level"])["value"].agg(["mean", "std", "count"])
    modes = [m for m in ordered(rows["mode"].unique(), SWEEP_MODES) if m in set(rows["mode"])]
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
            table(header, body, n_left=len(row_keys)), ""]


def sweep_section(run_dir: str, figures_dir: str, figures_link: str) -> list[str]:
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
