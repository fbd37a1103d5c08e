"""The experiment report, rebuilt from a realistic results table: numbers land in the
right cells, the headline sentence follows the data, figures are real PNGs and links
resolve, missing stages render as "–", local and S3 storage both work."""
from __future__ import annotations

import json
import os
import re
from itertools import product

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from raydisc import storage
from raydisc.evaluation import classification_report, report_table
from raydisc.experiments.report import MISSING, load_results, write_report
from raydisc.labels import CLASS_NAMES

NAMES = list(CLASS_NAMES)
ARCHS = ("spectrogram_cnn", "waveform_cnn")
STAGES = ("pretrained", "finetuned", "target_only")
MODELS = ("best_member", "ensemble")
LEVELS = ("station", "event")
# Test split per target: ((earthquake, blast) recordings, (earthquake, blast) events).
# craton has the rarest class (4 of 40 blast recordings), alpine a tie.
TARGETS = {"alpine": ((30, 30), (10, 10)), "basin": ((36, 12), (12, 4)), "craton": ((36, 4), (13, 2))}
BASE_ACCURACY = {"pretrained": 0.70, "finetuned": 0.85, "target_only": 0.80}
# The headline cells (craton, event level, 15 events): spectrogram 14/15 vs 13/15 (holds),
# waveform 12/15 vs 13/15 (does not hold).
HEADLINE = {
    ("spectrogram_cnn", "craton", "finetuned", "ensemble", "event"): 14,
    ("spectrogram_cnn", "craton", "pretrained", "best_member", "event"): 13,
    ("waveform_cnn", "craton", "finetuned", "ensemble", "event"): 12,
    ("waveform_cnn", "craton", "pretrained", "best_member", "event"): 13,
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 5_000


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def _probs(y, n_correct, rng):
    """Two-class probabilities whose argmax is right for exactly ``n_correct`` rows."""
    n = len(y)
    pred = y.copy()
    wrong = rng.permutation(n)[: n - n_correct]
    pred[wrong] = 1 - y[wrong]
    confidence = rng.uniform(0.55, 0.99, n)
    p = np.empty((n, 2))
    p[np.arange(n), pred] = confidence
    p[np.arange(n), 1 - pred] = 1 - confidence
    return p


def build_results(overrides=None, drop=(), seed=0):
    """Results table like the experiment writes; returns ``(table, reports)`` with
    ``reports[(arch, target, stage, model, level)]`` the classification reports.
    ``drop``: (arch, target, stage) cells not run; ``None`` in a slot matches any."""
    overrides = {**HEADLINE, **(overrides or {})}
    rng = np.random.default_rng(seed)
    frames, reports = [], {}
    for arch, (target, (stations, events)), stage in product(ARCHS, TARGETS.items(), STAGES):
        if any(all(d is None or d == v for d, v in zip(cell, (arch, target, stage))) for cell in drop):
            continue
        for model, level in product(MODELS, LEVELS):
            y = _labels(stations if level == "station" else events)
            accuracy = BASE_ACCURACY[stage] + (0.05 if model == "ensemble" else 0.0)
            n_correct = overrides.get((arch, target, stage, model, level), min(len(y), round(accuracy * len(y))))
            rep = classification_report(y, _probs(y, n_correct, rng), NAMES)
            reports[(arch, target, stage, model, level)] = rep
            frames.append(report_table(rep, model, level, split="test", regions=target, event_rule="mean",
                                       bundle_id=f"{arch}-{target}-{stage}", architecture=arch,
                                       target=target, stage=stage))
    return pd.concat(frames, ignore_index=True), reports


def _section(md, heading):
    start = md.index(heading) + len(heading)
    end = md.find("\n#", start)
    return md[start:] if end < 0 else md[start:end]


def _table_rows(section):
    """Rows of the first Markdown table in ``section`` as dicts header -> cell."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in lines]
    header = split[0]
    return [dict(zip(header, row)) for row in split[2:]]


def _row(section, **match):
    rows = [r for r in _table_rows(section) if all(r[k] == v for k, v in match.items())]
    assert len(rows) == 1, (match, section)
    return rows[0]


def _links(md):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def _pct(value):
    return f"{100 * value:.1f}"


def _tiny_png():
    import io

    fig = Figure(figsize=(3, 2))
    fig.add_subplot(1, 1, 1).plot([0.1, 0.5, 1.0], [0.8, 0.88, 0.9])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _sweep_table():
    rows = []
    test_finetuned_station = {0: 0.80, 1: 0.85, 2: 0.90}
    for fraction, seed, mode, split, level in product((0.1, 0.5, 1.0), (0, 1, 2), ("finetuned", "scratch"),
                                                     ("validation", "test"), LEVELS):
        value = 0.6 + 0.3 * fraction + 0.01 * seed
        if (fraction, mode, split, level) == (0.1, "finetuned", "test", "station"):
            value = test_finetuned_station[seed]
        if split == "validation":
            value = 0.1  # must not leak into the test table
        rows.append({"fraction": fraction, "seed": seed, "mode": mode, "strategy": "full", "split": split,
                     "level": level, "metric": "accuracy", "value": value})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A run with one stage missing (waveform_cnn / basin / target_only), settings and a sweep."""
    run = tmp_path_factory.mktemp("run")
    table, reports = build_results(drop=[("waveform_cnn", "basin", "target_only")])
    storage.write_frame(str(run / "results" / "metrics.parquet"), table)
    storage.write_frame(str(run / "results" / "metrics.csv"), table)
    config = {"pretrain": {"epochs": 30, "members": 5, "lr": 0.001},
              "finetune": {"epochs": 10, "strategy": "full"},
              "note": "x" * 300}
    (run / "experiment.json").write_text(json.dumps(config))
    storage.write_frame(str(run / "sweep" / "results.parquet"), _sweep_table())
    (run / "sweep" / "learning_curve.png").write_bytes(_tiny_png())
    path = write_report(str(run))
    return path, open(path, encoding="utf-8").read(), reports


def test_default_location_and_sections(full_report):
    path, md, _ = full_report
    assert os.path.basename(path) == "report.md"
    for heading in ("## Settings", "### Station level", "### Event level", "## Recall of each target region's minority",
                    "## Headline check", "## Confusion matrices", "## Amount of fine-tuning data"):
        assert heading in md


def test_accuracy_cells_match_the_reports(full_report):
    _, md, reports = full_report
    for level, n_label in (("station", "n (recordings)"), ("event", "n (events)")):
        section = _section(md, f"### {level.capitalize()} level")
        for arch, target in (("spectrogram_cnn", "craton"), ("waveform_cnn", "alpine")):
            row = _row(section, architecture=arch, target=target)
            assert row[n_label] == str(reports[(arch, target, "pretrained", "ensemble", level)]["n"])
            for stage, label in (("pretrained", "pretrained only"), ("finetuned", "fine-tuned"),
                                 ("target_only", "target only")):
                for model, model_label in (("best_member", "best single"), ("ensemble", "ensemble")):
                    expected = _pct(reports[(arch, target, stage, model, level)]["accuracy"])
                    assert row[f"{label}: {model_label}"] == expected
    event = _row(_section(md, "### Event level"), architecture="spectrogram_cnn", target="craton")
    assert event["n (events)"] == "15"
    assert event["fine-tuned: ensemble"] == "93.3"
    assert event["pretrained only: best single"] == "86.7"


def test_missing_stage_renders_as_dash(full_report):
    _, md, _ = full_report
    for level in LEVELS:
        row = _row(_section(md, f"### {level.capitalize()} level"), architecture="waveform_cnn", target="basin")
        assert row["target only: best single"] == MISSING == row["target only: ensemble"]
        assert row["fine-tuned: ensemble"] not in (MISSING, "")
    recall = _row(_section(md, "## Recall"), architecture="waveform_cnn", target="basin", level="event")
    assert recall["target only: ensemble"] == MISSING
    assert "waveform_cnn, station level confusion" in md


def test_minority_class_recall(full_report):
    _, md, reports = full_report
    section = _section(md, "## Recall")
    craton = _row(section, architecture="spectrogram_cnn", target="craton", level="station")
    assert (craton["minority class"], craton["support"]) == ("blast", "4 of 40")
    for stage, model in product(STAGES, MODELS):
        expected = reports[("spectrogram_cnn", "craton", stage, model, "station")]["per_class"]["blast"]["recall"]
        label = {"pretrained": "pretrained only", "finetuned": "fine-tuned", "target_only": "target only"}[stage]
        assert craton[f"{label}: {'ensemble' if model == 'ensemble' else 'best single'}"] == _pct(expected)
    craton_events = _row(section, architecture="spectrogram_cnn", target="craton", level="event")
    assert craton_events["support"] == "2 of 15"
    assert _row(section, architecture="waveform_cnn", target="basin", level="station")["support"] == "12 of 48"
    # A 30/30 tie goes to the class listed first in CLASS_NAMES.
    assert _row(section, architecture="waveform_cnn", target="alpine", level="station")["minority class"] == NAMES[0]


def test_headline_follows_the_data(full_report):
    _, md, _ = full_report
    section = _section(md, "## Headline check")
    assert "**craton** (blast: 4 of 40 test recordings, 10.0 %)" in section
    spectrogram = next(line for line in section.splitlines() if line.startswith("- **spectrogram_cnn**"))
    waveform = next(line for line in section.splitlines() if line.startswith("- **waveform_cnn**"))
    assert "fine-tuning + ensemble: 93.3 % vs pretrained best single: 86.7 %" in spectrogram
    assert "on 15 test events" in spectrogram and "one event = 6.7 percentage points" in spectrogram
    assert "headline effect holds" in spectrogram and "does not hold" not in spectrogram
    assert "fine-tuning + ensemble: 80.0 % vs pretrained best single: 86.7 %" in waveform
    assert "headline effect does not hold" in waveform


def test_figures_are_png_and_links_resolve(full_report):
    path, md, _ = full_report
    links = _links(md)
    assert set(links) >= {"report_figures/accuracy_station.png", "report_figures/accuracy_event.png",
                          "report_figures/learning_curve.png",
                          *(f"report_figures/confusion_{a}_ensemble_{lv}.png" for a in ARCHS for lv in LEVELS)}
    for link in links:
        assert not os.path.isabs(link)
        target = os.path.join(os.path.dirname(path), link)
        data = open(target, "rb").read()
        assert data.startswith(PNG_MAGIC), link
        if "learning_curve" not in link:
            assert len(data) > MIN_PNG_BYTES, link


def test_settings_and_sweep_sections(full_report):
    _, md, _ = full_report
    settings = _section(md, "## Settings")
    assert _row(settings, setting="`pretrain.members`")["value"] == "5"
    assert _row(settings, setting="`finetune.strategy`")["value"] == "full"
    note = _row(settings, setting="`note`")["value"]
    assert note.endswith("…") and len(note) < 100
    sweep = _section(md, "## Amount of fine-tuning data")
    row = _row(sweep, fraction="0.1")
    assert row["fine-tuned, station"] == "85.0 ± 5.0"
    assert row["from scratch, event"] == "64.0 ± 1.0"  # 0.6 + 0.03 + 0.01 * seed over seeds 0..2
    assert "10.0" not in sweep  # validation rows stay out


def test_custom_out_and_stage_not_run(tmp_path):
    run = tmp_path / "run"
    table, _ = build_results(drop=[(None, None, "finetuned")])
    storage.write_frame(str(run / "results" / "metrics.parquet"), table)
    out = tmp_path / "elsewhere" / "summary.md"
    assert write_report(str(run), str(out)) == str(out)
    md = out.read_text(encoding="utf-8")
    assert "## Settings" not in md and "## Amount of fine-tuning data" not in md
    row = _row(_section(md, "### Event level"), architecture="spectrogram_cnn", target="alpine")
    assert row["fine-tuned: best single"] == MISSING == row["fine-tuned: ensemble"]
    assert row["pretrained only: ensemble"] != MISSING
    headline = _section(md, "## Headline check")
    assert headline.count("cannot be checked yet") == len(ARCHS)
    assert "holds" not in headline
    for link in _links(md):
        assert link.startswith("summary_figures/")
        assert (out.parent / link).read_bytes().startswith(PNG_MAGIC)


def test_missing_results_table_names_the_path(tmp_path):
    expected = storage.join(str(tmp_path), "results", "metrics.parquet")
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        write_report(str(tmp_path))


def test_csv_fallback_and_reruns_keep_the_last_result(tmp_path):
    first, _ = build_results(seed=1)
    rerun, reports = build_results(seed=2)
    storage.write_frame(str(tmp_path / "results" / "metrics.csv"), pd.concat([first, rerun], ignore_index=True))
    table = load_results(str(tmp_path))
    key = {"architecture": "waveform_cnn", "target": "basin", "stage": "finetuned", "model": "ensemble",
           "level": "station", "metric": "log_loss"}
    cell = table[np.logical_and.reduce([table[k] == v for k, v in key.items()])]
    assert cell["value"].tolist() == pytest.approx([reports[("waveform_cnn", "basin", "finetuned", "ensemble",
                                                             "station")]["log_loss"]])


def test_report_on_s3(s3_bucket):
    run = f"{s3_bucket}/experiments/loro"
    table, reports = build_results()
    storage.write_frame(storage.join(run, "results", "metrics.parquet"), table)
    path = write_report(run)
    assert path == storage.join(run, "report.md")
    md = storage.read_bytes(path).decode("utf-8")
    row = _row(_section(md, "### Station level"), architecture="waveform_cnn", target="craton")
    expected = reports[("waveform_cnn", "craton", "finetuned", "ensemble", "station")]["accuracy"]
    assert row["fine-tuned: ensemble"] == _pct(expected)
    assert "headline effect holds" in md
    links = _links(md)
    assert links
    for link in links:
        assert storage.read_bytes(storage.join(run, link)).startswith(PNG_MAGIC)
