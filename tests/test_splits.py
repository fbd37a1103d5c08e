"""Event-wise, stratified, reproducible split assignment."""
from collections import Counter

from raydisc.config import SplitConfig
from raydisc.data.splits import assign_splits

EVENTS = [(f"r-{i:04d}", 1 if i % 10 == 0 else 0) for i in range(500)]


def test_fractions_are_met_per_class():
    splits = assign_splits(EVENTS, SplitConfig(seed=1))
    for label in (0, 1):
        counts = Counter(splits[e] for e, lab in EVENTS if lab == label)
        n = sum(counts.values())
        assert abs(counts["train"] / n - 0.7) < 0.03
        assert abs(counts["validation"] / n - 0.15) < 0.03
        assert abs(counts["test"] / n - 0.15) < 0.03


def test_reproducible_and_order_independent_but_seed_dependent():
    a = assign_splits(EVENTS, SplitConfig(seed=3))
    b = assign_splits(list(reversed(EVENTS)), SplitConfig(seed=3))
    c = assign_splits(EVENTS, SplitConfig(seed=4))
    assert a == b
    assert a != c


def test_minority_class_with_three_events_reaches_every_split():
    events = [(f"e{i}", 0) for i in range(50)] + [("b1", 1), ("b2", 1), ("b3", 1)]
    splits = assign_splits(events, SplitConfig())
    assert sorted(splits[e] for e in ("b1", "b2", "b3")) == ["test", "train", "validation"]
