"""Calibration of the synthetic data: how well do classic discriminants do?

Generates (or reads) a synthetic archive, computes a few classic station-level features
from the raw files with ObsPy + numpy, and trains a logistic regression per region and
pooled over regions, holding out whole events (5-fold stratified group
cross-validation: every event is scored once by a model that never saw it).

Features per station recording (3-component vector amplitudes, counts divided by the
overall sensitivity from the StationXML, windows from the catalog picks):

* ``log10(S/P)`` rms amplitude ratio in 1-3, 3-6 and 6-12 Hz,
* ``log10(E[6-12 Hz] / E[1-3 Hz])`` from P to S + 5 s (high/low-frequency ratio),
* ``log10`` epicentral distance (catalog origin to station),
* catalog magnitude.

The synthetic physics is tuned so that this baseline is informative but far from
perfect: the CNNs should have something left to learn (Rg, scalloping, coda shape).

Usage::

    python bench/calibrate_baseline.py [--root DIR] [--events N] [--seed S] [--regions a,b]

Without ``--root`` a temporary archive is generated and removed afterwards; with a
``--root`` that already holds regions they are read, otherwise generated there.
"""
from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from obspy import read, read_events, read_inventory
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raydisc.data import layout  # noqa: E402
from raydisc.labels import label_of  # noqa: E402
from raydisc.storage import exists, read_bytes  # noqa: E402

BANDS_HZ = ((1.0, 3.0), (3.0, 6.0), (6.0, 12.0))
FEATURES = ("logSP_1_3", "logSP_3_6", "logSP_6_12", "logHF_LF", "log_distance", "magnitude")
KM_PER_DEGREE = 111.195
SUBSETS = {
    "S/P ratios (3 bands)": [0, 1, 2],
    "S/P ratios + distance + magnitude": [0, 1, 2, 4, 5],
    "HF/LF + distance + magnitude": [3, 4, 5],
    "all six": [0, 1, 2, 3, 4, 5],
}


def station_features(
    data: np.ndarray, fs: float, start_offset_s: float, p_s: np.ndarray, s_s: np.ndarray
) -> np.ndarray:
    """Amplitude-ratio features of stations of one event.

    ``data``: ground velocity, shape ``(n_sta, 3, n)``; ``p_s``/``s_s``: P and S pick
    times (s after the first sample minus ``start_offset_s``), shape ``(n_sta,)``.
    Returns ``(n_sta, 4)``: three log10 S/P ratios and the log10 HF/LF energy ratio.
    """
    n_sta, _, n = data.shape
    p_idx = np.round((p_s + start_offset_s) * fs).astype(int)
    s_idx = np.round((s_s + start_offset_s) * fs).astype(int)
    sp = s_idx - p_idx
    p_end = p_idx + np.clip((sp * 0.9).astype(int), int(0.5 * fs), int(2.5 * fs))
    s_end = s_idx + int(2.5 * fs)
    lead = int(0.1 * fs)
    out = np.empty((n_sta, 4))
    energies = []
    for j, (lo, hi) in enumerate(BANDS_HZ):
        sos = signal.butter(4, [lo, min(hi, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
        x = signal.sosfiltfilt(sos, data, axis=-1)
        power = (x**2).sum(axis=1)  # 3-component power, (n_sta, n)
        cum = np.concatenate([np.zeros((n_sta, 1)), np.cumsum(power, axis=1)], axis=1)
        rows = np.arange(n_sta)

        def mean_power(a, b):
            a, b = np.clip(a, 0, n), np.clip(b, 1, n)
            return (cum[rows, b] - cum[rows, a]) / np.maximum(b - a, 1)

        p_pow = mean_power(p_idx - lead, p_end)
        s_pow = mean_power(s_idx - lead, s_end)
        out[:, j] = 0.5 * np.log10(s_pow / p_pow)
        energies.append(mean_power(p_idx - lead, s_idx + int(5 * fs)))
    out[:, 3] = np.log10(energies[2] / energies[0])
    return out


def read_region(root: str, region: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features ``(n_rec, 6)``, catalog labels, true labels and event groups of a region."""
    catalog = read_events(io.BytesIO(read_bytes(layout.catalog_uri(root, region))))
    inventory = read_inventory(io.BytesIO(read_bytes(layout.inventory_uri(root, region))))
    truth = {}
    if exists(layout.truth_uri(root, region)):
        import csv

        text = read_bytes(layout.truth_uri(root, region)).decode()
        truth = {row["event_id"]: row["true_type"] for row in csv.DictReader(io.StringIO(text))}
    coords = {}
    for net in inventory:
        for sta in net:
            coords[(net.code, sta.code)] = (sta.latitude, sta.longitude)
    feats, labels, true_labels, groups = [], [], [], []
    for event in catalog:
        eid = layout.event_id_from_resource_id(event.resource_id)
        origin = event.preferred_origin() or event.origins[0]
        mag = (event.preferred_magnitude() or event.magnitudes[0]).mag
        stream = read(io.BytesIO(read_bytes(layout.waveform_uri(root, region, eid))))
        stream.remove_sensitivity(inventory)
        picks = {(p.waveform_id.network_code, p.waveform_id.station_code, p.phase_hint): p.time for p in event.picks}
        keys = sorted({(tr.stats.network, tr.stats.station) for tr in stream})
        start = min(tr.stats.starttime for tr in stream)
        fs = stream[0].stats.sampling_rate
        n = min(tr.stats.npts for tr in stream)
        data = np.empty((len(keys), 3, n))
        for i, (net, sta) in enumerate(keys):
            for c, comp in enumerate("ZNE"):
                data[i, c] = stream.select(network=net, station=sta, component=comp)[0].data[:n]
        p_s = np.array([picks[(net, sta, "P")] - start for net, sta in keys])
        s_s = np.array([picks[(net, sta, "S")] - start for net, sta in keys])
        f = station_features(data, fs, 0.0, p_s, s_s)
        dist = []
        for net, sta in keys:
            lat, lon = coords[(net, sta)]
            dy = (lat - origin.latitude) * KM_PER_DEGREE
            dx = (lon - origin.longitude) * KM_PER_DEGREE * math.cos(math.radians(origin.latitude))
            dist.append(math.hypot(dx, dy))
        extra = np.column_stack([np.log10(np.maximum(dist, 1.0)), np.full(len(keys), mag)])
        feats.append(np.hstack([f, extra]))
        label = label_of(event.event_type, event_id=eid)
        labels += [label] * len(keys)
        true_labels += [label_of(truth.get(eid, event.event_type))] * len(keys)
        groups += [f"{region}/{eid}"] * len(keys)
    return np.vstack(feats), np.array(labels), np.array(true_labels), np.array(groups)


def evaluate(x: np.ndarray, y: np.ndarray, y_true: np.ndarray, groups: np.ndarray, seed: int = 0) -> dict:
    """Held-out-event predictions of a standardised, class-balanced logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_events_minor = min(len(set(groups[y == k])) for k in (0, 1))
    folds = max(2, min(5, n_events_minor))
    pred = np.empty_like(y)
    for train, test in StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
        model.fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    recall = [float(np.mean(pred[y == k] == k)) for k in (0, 1)]
    return {
        "n": len(y),
        "accuracy": float(np.mean(pred == y)),
        "balanced": float(np.mean(recall)),
        "recall_eq": recall[0],
        "recall_blast": recall[1],
        "accuracy_vs_truth": float(np.mean(pred == y_true)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="archive root (local path or URI); default: temporary")
    parser.add_argument("--events", type=int, default=300, help="events per region when generating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--regions", default="alpine,basin,craton")
    args = parser.parse_args(argv)
    regions = args.regions.split(",")
    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.mkdtemp(prefix="raydisc-calib-")
        root = tmp
    try:
        missing = [r for r in regions if not exists(layout.catalog_uri(root, r))]
        if missing:
            from raydisc.synthetic import generate_archive

            t0 = time.perf_counter()
            summary = generate_archive(root, regions=missing, events_per_region=args.events, seed=args.seed)
            dt = time.perf_counter() - t0
            print(f"generated {sum(s['events'] for s in summary.values())} events in {dt:.1f} s under {root}")
        t0 = time.perf_counter()
        per_region = {r: read_region(root, r) for r in regions}
        print(f"features from the raw files in {time.perf_counter() - t0:.1f} s")
        print()
        print(f"{'region':8s} {'events':>6s} {'eq':>5s} {'blast':>5s} {'recs':>6s} {'acc':>6s} {'bal.acc':>7s} "
              f"{'rec_eq':>6s} {'rec_bl':>6s} {'acc_truth':>9s}")

        def row(name, x, y, yt, g):
            n_ev = len(set(g))
            n_bl = len(set(g[y == 1]))
            m = evaluate(x, y, yt, g, seed=args.seed)
            print(f"{name:8s} {n_ev:6d} {n_ev - n_bl:5d} {n_bl:5d} {m['n']:6d} {m['accuracy']:6.3f} {m['balanced']:7.3f} "
                  f"{m['recall_eq']:6.3f} {m['recall_blast']:6.3f} {m['accuracy_vs_truth']:9.3f}")

        for r in regions:
            row(r, *per_region[r])
        stacked = [np.concatenate([per_region[r][k] for r in regions]) for k in range(4)]
        if len(regions) > 1:
            row("pooled", *stacked)
        print()
        print("pooled accuracy with feature subsets:")
        x, y, y_true, groups = stacked
        for label, columns in SUBSETS.items():
            m = evaluate(x[:, columns], y, y_true, groups, seed=args.seed)
            print(f"  {label:34s} acc {m['accuracy']:.3f}  bal.acc {m['balanced']:.3f}")
        print()
        print("station level; labels = catalog event types (~1 % label noise); acc_truth scores the same")
        print("predictions against the true source types; 5-fold cross-validation grouped by event.")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
