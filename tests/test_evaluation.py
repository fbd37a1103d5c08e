"""Metrics against hand-computed values; plots produce PNG files."""
from __future__ import annotations

import math

import numpy as np
import pytest

from raydisc.evaluation import classification_report, reliability_curve, report_table
from raydisc.evaluation.metrics import confusion_matrix

NAMES = ["earthquake", "blast"]
# Predictions (argmax): 0, 0, 1, 0, 1, 0
Y = np.array([0, 0, 0, 0, 1, 1])
P = np.array([[0.9, 0.1], [0.85, 0.15], [0.35, 0.65], [0.7, 0.3], [0.25, 0.75], [0.55, 0.45]])


def test_classification_report_hand_computed():
    rep = classification_report(Y, P, NAMES)
    assert rep["n"] == 6
    assert rep["confusion_matrix"] == [[3, 1], [1, 1]]
    assert rep["accuracy"] == pytest.approx(4 / 6)
    eq, bl = rep["per_class"]["earthquake"], rep["per_class"]["blast"]
    assert (eq["precision"], eq["recall"], eq["f1"], eq["support"]) == pytest.approx((0.75, 0.75, 0.75, 4))
    assert (bl["precision"], bl["recall"], bl["f1"], bl["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert rep["balanced_accuracy"] == pytest.approx(0.625)
    assert rep["macro_f1"] == pytest.approx(0.625)
    # -(ln .9 + ln .85 + ln .35 + ln .7 + ln .75 + ln .45) / 6
    assert rep["log_loss"] == pytest.approx(0.4600944, abs=1e-6)
    assert rep["expected_calibration_error"] == pytest.approx(reliability_curve(Y, P)["ece"])


def test_undefined_metrics_are_nan_not_zero():
    # Three classes: class 1 occurs but is never predicted, class 2 neither occurs nor is predicted.
    y = np.array([0, 1, 0])
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    rep = classification_report(y, p, ["a", "b", "c"])
    b, c = rep["per_class"]["b"], rep["per_class"]["c"]
    assert math.isnan(b["precision"]) and b["recall"] == 0.0 and b["f1"] == 0.0
    assert math.isnan(c["precision"]) and math.isnan(c["recall"]) and math.isnan(c["f1"])
    # a: precision 2/3, recall 1, F1 = 2*2/(2*2+1+0) = 0.8; macro over a and b only.
    assert rep["per_class"]["a"]["f1"] == pytest.approx(0.8)
    assert rep["macro_f1"] == pytest.approx(0.4)
    assert rep["balanced_accuracy"] == pytest.approx(0.5)


def test_confusion_matrix_rows_true_columns_predicted():
    np.testing.assert_array_equal(confusion_matrix([0, 1, 1, 2], [1, 1, 2, 2], 3), [[0, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_report_rejects_bad_inputs():
    with pytest.raises(ValueError, match="class names"):
        classification_report(Y, P, ["only-one"])
    with pytest.raises(ValueError, match="outside"):
        classification_report(np.array([0, 2]), P[:2], NAMES)
    with pytest.raises(ValueError, match="integer"):
        classification_report(Y.astype(float), P, NAMES)
    with pytest.raises(ValueError, match="no recordings"):
        classification_report(np.array([], dtype=int), np.zeros((0, 2)), NAMES)


def test_report_table_is_tidy():
    df = report_table(classification_report(Y, P, NAMES), model="ensemble", level="station", region="alpine")
    assert list(df.columns) == ["model", "level", "metric", "class", "value", "region"]
    assert len(df) == 6 + 2 * 4 + 4
    assert set(df["model"]) == {"ensemble"} and set(df["level"]) == {"station"} and set(df["region"]) == {"alpine"}

    def value(metric, cls):
        (v,) = df.loc[(df["metric"] == metric) & (df["class"] == cls), "value"]
        return v

    assert value("accuracy", "all") == pytest.approx(4 / 6)
    assert value("recall", "blast") == pytest.approx(0.5)
    assert value("support", "earthquake") == 4
    assert value("predicted_as:blast", "earthquake") == 1  # one earthquake called a blast
    assert value("predicted_as:earthquake", "earthquake") == 3


def test_reliability_curve_top_label_hand_computed():
    # confidences .9 .85 .65 .7 .75 .55, correct 1 1 0 1 1 0
    curve = reliability_curve(Y, P, n_bins=5)
    np.testing.assert_allclose(curve["bin_edges"], [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_array_equal(curve["count"], [0, 0, 1, 3, 2])
    np.testing.assert_allclose(curve["mean_predicted"], [np.nan, np.nan, 0.55, 0.7, 0.875])
    np.testing.assert_allclose(curve["observed"], [np.nan, np.nan, 0.0, 2 / 3, 1.0])
    # (1 * 0.55 + 3 * |2/3 - 0.7| + 2 * 0.125) / 6
    assert curve["ece"] == pytest.approx(0.15)


def test_reliability_curve_positive_class_and_edges():
    y = np.array([0, 1, 1])
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    curve = reliability_curve(y, p, n_bins=10, positive_class=1)
    # p(blast) = 0 -> first bin, 0.5 -> bin 5, 1.0 -> last bin (closed on the right)
    np.testing.assert_array_equal(np.flatnonzero(curve["count"]), [0, 5, 9])
    np.testing.assert_allclose(curve["observed"][[0, 5, 9]], [0.0, 1.0, 1.0])
    assert curve["ece"] == pytest.approx(0.5 / 3)


# ----------------------------------------------------------------- plots


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.shape[0] > 100 and image.shape[1] > 100
    # Not a blank canvas.
    assert image[..., :3].std() > 0.01


def test_plots_write_png(tmp_path):
    from raydisc.evaluation import plots

    rep = classification_report(Y, P, NAMES)
    out = tmp_path / "figures" / "nested"  # folders are created on demand
    uri = plots.plot_confusion_matrix(rep["confusion_matrix"], NAMES, str(out / "cm.png"), unit="events")
    assert uri == str(out / "cm.png")
    plots.plot_reliability(
        {"ensemble": reliability_curve(Y, P), "best member": reliability_curve(Y, P[:, ::-1])}, str(out / "rel.png")
    )
    plots.plot_reliability_from_probs(Y, {"ensemble": P}, str(out / "rel2.png"))
    spread = np.array([0.01, 0.02, 0.2, 0.05, 0.03, 0.25])
    plots.plot_spread_histogram(spread, P.argmax(axis=1) == Y, str(out / "spread.png"))
    for name in ("cm.png", "rel.png", "rel2.png", "spread.png"):
        _assert_png(out / name)


def test_confusion_plot_with_an_absent_class(tmp_path):
    from raydisc.evaluation import plots

    # A class with no true examples has an undefined row-normalised row ("n/a").
    plots.plot_confusion_matrix([[5, 1], [0, 0]], NAMES, str(tmp_path / "cm.png"))
    _assert_png(tmp_path / "cm.png")
    with pytest.raises(ValueError, match="confusion must be"):
        plots.plot_confusion_matrix([[1, 2, 3]], NAMES, str(tmp_path / "bad.png"))


@pytest.mark.parametrize("seed", range(12))
def test_metrics_equal_scikit_learns_on_random_data(seed):
    """The hand-written metrics give what scikit-learn gives (NaN where scikit-learn's
    ``zero_division=np.nan`` does), including classes that never occur or are never
    predicted; the reliability curve's non-empty bins equal ``calibration_curve``."""
    import warnings

    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 5))
    n = int(rng.integers(1, 300))
    present = rng.choice(n_classes, size=int(rng.integers(1, n_classes + 1)), replace=False)
    y = rng.choice(present, size=n)
    probs = rng.dirichlet(np.full(n_classes, 0.7), size=n)
    names = [f"c{c}" for c in range(n_classes)]
    labels = list(range(n_classes))
    pred = probs.argmax(axis=1)

    rep = classification_report(y, probs, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the absent classes
        assert np.array_equal(confusion_matrix(y, pred, n_classes), skm.confusion_matrix(y, pred, labels=labels))
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average=None, zero_division=np.nan)
        assert rep["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        assert rep["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert rep["macro_f1"] == pytest.approx(skm.f1_score(y, pred, labels=labels, average="macro",
                                                             zero_division=np.nan), nan_ok=True)
        assert rep["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=labels))
    for c, name in enumerate(names):
        got = rep["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(
            (precision[c], recall[c], f1[c]), nan_ok=True)
        assert got["support"] == support[c]

    # Binned as scikit-learn's "uniform" strategy; scores exactly on a bin edge have
    # probability zero here (scikit-learn puts them in the upper bin too, up to rounding).
    for positive_class in (None, 1):
        curve = reliability_curve(y, probs, n_bins=7, positive_class=positive_class)
        if positive_class is None:
            hit, score = pred == y, probs.max(axis=1)
        else:
            hit, score = y == positive_class, probs[:, positive_class]
        observed, mean_predicted = calibration_curve(hit.astype(int), score, n_bins=7, strategy="uniform")
        filled = curve["count"] > 0
        assert curve["observed"][filled] == pytest.approx(observed)
        assert curve["mean_predicted"][filled] == pytest.approx(mean_predicted)
