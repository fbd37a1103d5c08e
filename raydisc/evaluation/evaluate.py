"""Evaluate an ensemble bundle on one split of a shard folder: station and event level,
best single member against the soft-voting ensemble.

Predictions stream through Ray Data: the split's recordings are read from the shards
(:func:`raydisc.data.split_reader.read_split`, the same reader training uses) and an actor
pool that loads the bundle once per actor computes every member's probabilities; only
the small per-recording probability table reaches the driver.

Written to ``out_dir`` (default ``{bundle}/../evaluation-{split}``)::

    station_predictions.parquet   one row per recording: metadata, label, every member's
                                  probabilities (p_{class}_m{NNN}), ensemble and best-member
                                  probabilities, predictions, spread
    event_predictions.parquet     one row per event: label, stations, ensemble and best-member
                                  event probabilities and predictions, calibrated confidence,
                                  disagreement and triage (:mod:`raydisc.evaluation.triage_report`)
    metrics.csv / metrics.parquet tidy (model, level, metric, class, value) rows for
                                  model in {best_member, ensemble}, level in {station, event}
    summary.csv                   the compact table: {best single, ensemble} x {station acc, event acc}
    member_accuracy.csv           every member's station and event accuracy
    accuracy_by_group.csv         station accuracy per component set (Z, ZNE, ...), pick
                                  source (catalog, predicted) and response kind
    confusion_{model}_{level}.png confusion matrices (counts and row-normalised)
    reliability.png               reliability diagram, ensemble vs best member (station level)
    spread.png                    ensemble spread of correct and incorrect station verdicts
    triage.json                   triage: threshold for the target accuracy and share of events
                                  labelled automatically, ensemble vs best member; ECE before/after
                                  calibration; what the bundle's own threshold does here
    coverage_accuracy.csv / .png  accuracy of the automatic labels against their share, per model
    calibration.png               reliability diagram before/after temperature scaling (station level)
"""
from __future__ import annotations

import json
import math
import posixpath
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from .. import storage
from ..data.shards import ShardError, read_dataset_info, read_label_scheme
from ..ensemble.bundle_format import jsonable
from ..ensemble.triage import DEFAULT_TARGET_ACCURACY, NEVER
from ..ensemble.voting import aggregate_events, ensemble_spread, soft_vote
from ..features import drop_components
from .metrics import classification_report, report_table
from .triage_report import TriageReport, triage_report

META_COLUMNS = ("event_id", "region", "network", "station", "location", "label", "distance_km", "magnitude",
                "components", "pick_source", "response")
#: Station-level accuracy is broken down by these columns (``accuracy_by_group.csv``).
GROUP_COLUMNS = ("components", "pick_source", "response")
MODELS = ("best_member", "ensemble")
LEVELS = ("station", "event")


@dataclass
class EvaluationResult:
    """What :func:`evaluate` computed and where it wrote it.

    ``summary``: the compact table, index ``["best single (member k)", "ensemble (N
    members)"]``, columns ``["station acc", "event acc"]`` (fractions).
    ``reports``: ``{(model, level): classification_report dict}``.
    ``metrics``: tidy table of all reports. ``stations`` / ``events``: the prediction
    tables written as Parquet. ``out_dir``: where the files are. ``groups``:
    :func:`accuracy_by_group`. ``triage``: :func:`~raydisc.evaluation.triage_report.triage_report`.
    """

    summary: pd.DataFrame
    reports: dict[tuple[str, str], dict]
    metrics: pd.DataFrame
    stations: pd.DataFrame
    events: pd.DataFrame
    out_dir: str
    groups: pd.DataFrame | None = None
    triage: TriageReport | None = None

    def format(self) -> str:
        text = format_summary(self.summary) + "\n" + format_per_class(self.reports)
        if self.groups is not None and not self.groups.empty:
            text += "\n" + format_groups(self.groups)
        return text if self.triage is None else text + "\n" + self.triage.format()


def format_summary(summary: pd.DataFrame) -> str:
    """The compact table as text, accuracies in percent."""
    width = max(len(str(i)) for i in summary.index)
    lines = [f"{'':<{width}}  {'station acc':>11}  {'event acc':>9}"]
    for name, row in summary.iterrows():
        lines.append(f"{name:<{width}}  {100 * row['station acc']:>10.1f}%  {100 * row['event acc']:>8.1f}%")
    return "\n".join(lines)


def format_per_class(reports: dict[tuple[str, str], dict]) -> str:
    """Recall per class (named by the bundle's label scheme) and macro F1 of each model
    and level, in percent; ``n/a`` where a class has no recordings."""
    first = next(iter(reports.values()))
    names = first["class_names"]
    width = max(len(n) for n in names)
    head = f"{'':<{width + 2}}" + "".join(f"{model + ' ' + level:>22}" for model, level in reports)
    lines = ["recall per class and macro F1:", head]

    def cell(value: float) -> str:
        return f"{'n/a':>22}" if math.isnan(value) else f"{100 * value:>21.1f}%"

    for name in names:
        lines.append(f"  {name:<{width}}" + "".join(cell(r["per_class"][name]["recall"]) for r in reports.values()))
    lines.append(f"  {'macro F1':<{width}}" + "".join(cell(r["macro_f1"]) for r in reports.values()))
    return "\n".join(lines)


def default_out_dir(bundle_uri: str, split: str) -> str:
    """``{bundle}/../evaluation-{split}`` (the run directory that holds the bundle)."""
    bundle = bundle_uri.rstrip("/")
    scheme, sep, path = bundle.rpartition("://")
    parent = posixpath.dirname(path if sep else bundle)
    return f"{scheme}{sep}{parent}/evaluation-{split}" if sep else posixpath.join(parent, f"evaluation-{split}")


class _Predictor:
    """Ray Data actor: loads the bundle once, then maps batches of shard rows to the
    members' class probabilities, shape ``(B, n_members, n_classes)``, plus metadata."""

    def __init__(self, bundle_uri: str, preprocess: dict, torch_threads: int = 1, vertical_only: bool = False) -> None:
        import torch

        from ..config import PreprocessConfig
        from ..ensemble.bundle import load_bundle

        torch.set_num_threads(torch_threads)
        self.bundle = load_bundle(bundle_uri, expected_preprocess=PreprocessConfig.from_dict(preprocess))
        self.vertical_only = vertical_only

    def __call__(self, batch):
        from ..data.shards import decode_inputs

        out = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in META_COLUMNS}
        x = decode_inputs(batch, self.bundle.input_kind)
        if self.vertical_only:
            keep = np.zeros((len(x), 3), dtype=bool)
            keep[:, 0] = True
            x = drop_components(x, self.bundle.input_kind, keep)
            out["components"] = np.full(len(x), "Z", dtype=object)
        elif not x.flags.writeable:
            # A zero-copy view of the Arrow buffer; torch wants memory it may write.
            x = x.copy()
        # (n_members, B, C) -> (B, n_members, C): a Ray Data row is one recording.
        out["member_probabilities"] = np.ascontiguousarray(self.bundle.member_probabilities(x).transpose(1, 0, 2))
        return out


def predict_split(bundle, shards: str, regions: Sequence[str], split: str, *, batch_size: int = 256,
                  concurrency: int = 1, vertical_only: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Every member's probabilities for the ``split`` recordings of ``regions``
    (``vertical_only``: each recording with its horizontals dropped, as a vertical-only
    station would have recorded it: :func:`raydisc.features.drop_components`).

    ``bundle``: a loaded :class:`~raydisc.ensemble.bundle.EnsembleBundle` (its URI is
    re-loaded in the actors). Returns ``(metadata, member_probs)``: a DataFrame of
    :data:`META_COLUMNS` (one row per recording, sorted by region, event, network,
    station, location) and float32 ``(n_members, n, n_classes)``.
    """
    from ..data.split_reader import read_split

    kind = bundle.input_kind
    ds = read_split(shards, regions, split, [*META_COLUMNS, kind, f"{kind}_shape"]).map_batches(
        _Predictor,
        fn_constructor_kwargs={"bundle_uri": bundle.uri, "preprocess": bundle.preprocess_config.to_dict(),
                               "vertical_only": vertical_only},
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
    )
    frames, probs = [], []
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        if len(batch["label"]) == 0:
            continue
        frames.append(pd.DataFrame({name: batch[name] for name in META_COLUMNS}))
        probs.append(np.asarray(batch["member_probabilities"], dtype=np.float32))
    if not frames:
        raise ShardError(f"{shards}: region(s) {', '.join(regions)} have no recordings in the {split!r} split")
    meta = pd.concat(frames, ignore_index=True)
    member_probs = np.concatenate(probs).transpose(1, 0, 2)
    # Streaming order depends on task timing; sort so the tables are reproducible.
    order = np.lexsort([meta[c].astype(str).to_numpy() for c in ("location", "station", "network", "event_id", "region")])
    return meta.iloc[order].reset_index(drop=True), np.ascontiguousarray(member_probs[:, order])


def event_keys(meta: pd.DataFrame) -> np.ndarray:
    """``region/event_id`` of each recording: the event key (ids repeat across regions)."""
    return (meta["region"].astype(str) + "/" + meta["event_id"].astype(str)).to_numpy()


def _event_table(meta: pd.DataFrame, keys: np.ndarray, probs: dict[str, np.ndarray], rule: str,
                 class_names: Sequence[str]) -> pd.DataFrame:
    """One row per event key (sorted): region, event id, label, station count, and each
    model's event probabilities and predicted class."""
    grouped = meta.assign(event_key=keys).groupby("event_key", sort=True)
    if (grouped["label"].nunique() > 1).any():
        raise ShardError("recordings of one event carry different labels")
    table = grouped[["region", "event_id", "label"]].first().reset_index()
    table["n_stations"] = grouped.size().to_numpy()
    for model, p in probs.items():
        ids, event_probs = aggregate_events(keys, p, rule=rule)
        # aggregate_events sorts like np.unique, groupby(sort=True) likewise.
        assert (ids == table["event_key"].to_numpy()).all()
        for c, name in enumerate(class_names):
            table[f"p_{name}_{model}"] = event_probs[:, c]
        table[f"predicted_{model}"] = event_probs.argmax(axis=1)
    return table


def evaluate(
    bundle_uri: str,
    shards: str,
    regions: Sequence[str],
    split: str = "test",
    out_dir: str | None = None,
    event_rule: Literal["mean", "majority"] = "mean",
    *,
    batch_size: int = 256,
    concurrency: int = 1,
    plots: bool = True,
    vertical_only: bool = False,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
) -> EvaluationResult:
    """Evaluate the bundle at ``bundle_uri`` on the ``split`` recordings of ``regions``.

    The bundle must have been made with the shard folder's preprocessing config and
    label scheme (``BundleError`` otherwise). Station level: one verdict per recording. Event level:
    the recordings of an event (keyed by region and event id) combined with
    :func:`~raydisc.ensemble.voting.aggregate_events` using ``event_rule`` (``"mean"`` of
    the station probabilities, or ``"majority"`` of their verdicts) — for the ensemble,
    from the soft-voted station probabilities; for the best single member (the bundle's
    ``best_member``, chosen by validation loss) from its own. Writes the tables and
    figures listed in the module docstring to ``out_dir`` and returns them. Uses Ray Data
    (``concurrency`` predictor actors); needs ``ray.init()`` or starts a local Ray.
    ``vertical_only``: classify every recording with its horizontals dropped (what the
    ensemble would say had the stations recorded the vertical only). ``target_accuracy``:
    the accuracy the automatically labelled events must reach (``triage.json``).
    """
    from ..ensemble.bundle import load_bundle

    regions = list(regions)
    if event_rule not in ("mean", "majority"):
        raise ValueError(f"event_rule must be 'mean' or 'majority', got {event_rule!r}")
    info = read_dataset_info(shards)
    bundle = load_bundle(bundle_uri, expected_preprocess=info.preprocess, expected_label_scheme=read_label_scheme(shards),
                         data=f"shard folder {shards}")
    names = list(bundle.class_names)
    out_dir = out_dir or default_out_dir(bundle_uri, split)

    meta, member_probs = predict_split(bundle, shards, regions, split, batch_size=batch_size, concurrency=concurrency,
                                       vertical_only=vertical_only)
    y = meta["label"].to_numpy().astype(np.int64)
    n_members = member_probs.shape[0]
    best = bundle.best_member
    probs = {"best_member": member_probs[best].astype(np.float64), "ensemble": soft_vote(member_probs)}
    spread = ensemble_spread(member_probs)

    stations = meta.copy()
    for m in range(n_members):
        for c, name in enumerate(names):
            stations[f"p_{name}_m{m:03d}"] = member_probs[m, :, c]
    for model, p in probs.items():
        for c, name in enumerate(names):
            stations[f"p_{name}_{model}"] = p[:, c]
        stations[f"predicted_{model}"] = p.argmax(axis=1)
    stations["spread"] = spread

    keys = event_keys(meta)
    events = _event_table(meta, keys, probs, event_rule, names)
    event_probs = {model: events[[f"p_{name}_{model}" for name in names]].to_numpy() for model in MODELS}
    y_event = events["label"].to_numpy().astype(np.int64)
    triage = triage_report(keys, member_probs, y, y_event, bundle.triage_policy, best, target_accuracy, event_rule)
    events = pd.concat([events, triage.events], axis=1)

    reports: dict[tuple[str, str], dict] = {}
    for model in MODELS:
        reports[(model, "station")] = classification_report(y, probs[model], names)
        reports[(model, "event")] = classification_report(y_event, event_probs[model], names)
    extra = {"split": split, "regions": ",".join(regions), "event_rule": event_rule,
             "bundle_id": bundle.bundle_id, "architecture": bundle.architecture}
    metrics = pd.concat([report_table(r, model, level, **extra) for (model, level), r in reports.items()],
                        ignore_index=True)

    summary = pd.DataFrame(
        {"station acc": [reports[(m, "station")]["accuracy"] for m in MODELS],
         "event acc": [reports[(m, "event")]["accuracy"] for m in MODELS]},
        index=[f"best single (member {best})", f"ensemble ({n_members} members)"],
    )
    groups = accuracy_by_group(meta, probs, names)
    member_rows = []
    for m in range(n_members):
        _, ev = aggregate_events(keys, member_probs[m], rule=event_rule)
        member_rows.append({"member": m, **{k: bundle.member_metrics[m].get(k) for k in ("seed", "validation_loss")},
                            "station_accuracy": float((member_probs[m].argmax(axis=1) == y).mean()),
                            "event_accuracy": float((ev.argmax(axis=1) == y_event).mean()),
                            "is_best_member": m == best})

    storage.write_frame(storage.join(out_dir, "station_predictions.parquet"), stations)
    storage.write_frame(storage.join(out_dir, "event_predictions.parquet"), events)
    storage.write_frame(storage.join(out_dir, "metrics.csv"), metrics)
    storage.write_frame(storage.join(out_dir, "metrics.parquet"), metrics)
    storage.write_frame(storage.join(out_dir, "summary.csv"), summary.rename_axis("model").reset_index())
    storage.write_frame(storage.join(out_dir, "member_accuracy.csv"), pd.DataFrame(member_rows))
    storage.write_frame(storage.join(out_dir, "accuracy_by_group.csv"), groups)
    storage.write_frame(storage.join(out_dir, "coverage_accuracy.csv"), triage.curves)
    storage.write_bytes_atomic(storage.join(out_dir, "triage.json"),
                               json.dumps(jsonable(triage.summary), indent=2, allow_nan=False).encode())
    if plots:
        from .plots import (plot_confusion_matrix, plot_coverage_accuracy, plot_reliability,
                            plot_reliability_from_probs, plot_spread_histogram)

        label = {"best_member": f"best single member ({best})", "ensemble": f"ensemble ({n_members} members)"}
        for (model, level), report in reports.items():
            plot_confusion_matrix(report["confusion_matrix"], names, storage.join(out_dir, f"confusion_{model}_{level}.png"),
                                  title=f"{label[model]}, {level} level, {split} split",
                                  unit="recordings" if level == "station" else "events")
        plot_reliability_from_probs(y, {label[m]: probs[m] for m in MODELS}, storage.join(out_dir, "reliability.png"),
                                    title=f"Reliability, station level, {split} split")
        plot_spread_histogram(spread, probs["ensemble"].argmax(axis=1) == y, storage.join(out_dir, "spread.png"))
        curves = {label[m]: part for m, part in triage.curves.groupby("model", sort=False)}
        thresholds = {label[m]: triage.summary[m]["at_target"]["threshold"] for m in MODELS}
        plot_coverage_accuracy(curves, storage.join(out_dir, "coverage_accuracy.png"), target_accuracy,
                               {k: (None if v == NEVER else v) for k, v in thresholds.items()},
                               title=f"Coverage and accuracy of automatic labels, event level, {split} split")
        plot_reliability(triage.reliability, storage.join(out_dir, "calibration.png"),
                         title=f"Reliability before/after temperature scaling, station level, {split} split")
    return EvaluationResult(summary=summary, reports=reports, metrics=metrics, stations=stations, events=events,
                            out_dir=out_dir, groups=groups, triage=triage)


def accuracy_by_group(meta: pd.DataFrame, probs: dict[str, np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """Station-level accuracy and balanced accuracy of each model per value of each of
    :data:`GROUP_COLUMNS` (e.g. components ``Z`` vs ``ZNE``, pick source ``catalog`` vs
    ``predicted``): rows ``(group, value, model, recordings, accuracy,
    balanced_accuracy)``."""
    y = meta["label"].to_numpy().astype(np.int64)
    rows = []
    for column in GROUP_COLUMNS:
        values = meta[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            rows_of = values == value
            for model, p in probs.items():
                report = classification_report(y[rows_of], p[rows_of], class_names)
                rows.append({"group": column, "value": value, "model": model, "recordings": int(rows_of.sum()),
                             "accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"]})
    return pd.DataFrame(rows)


def format_groups(groups: pd.DataFrame) -> str:
    """:func:`accuracy_by_group` as text: one line per group value, ensemble and best single."""
    lines = ["station accuracy by component set / pick source / response (ensemble, best single):"]
    for (column, value), part in groups.groupby(["group", "value"], sort=True):
        by_model = part.set_index("model")
        lines.append(f"  {column:<12} {value:<10} {int(by_model['recordings'].iloc[0]):>6} recordings  "
                     + "  ".join(f"{100 * by_model.loc[m, 'accuracy']:5.1f}%" for m in ("ensemble", "best_member")))
    return "\n".join(lines)


__all__ = ["EvaluationResult", "GROUP_COLUMNS", "META_COLUMNS", "accuracy_by_group", "format_groups", "format_per_class", "default_out_dir", "evaluate", "format_summary", "predict_split"]
