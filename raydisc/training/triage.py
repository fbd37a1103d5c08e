"""The last step of training a bundle: its triage policy, fitted on the validation split.

Temperatures per member and the confidence threshold for a target accuracy
(:class:`~raydisc.ensemble.triage.TriagePolicy`), from every member's probabilities on the
validation recordings of the training regions, predicted the way ``raydisc evaluate``
predicts a split.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .reporting import percent


def fit_triage_policy(bundle_uri: str, shards: str, regions: Sequence[str], target_accuracy: float,
                      say: Callable[[str], None]) -> None:
    """Fit the bundle's triage policy on the validation split (every member's
    probabilities, by the evaluation's split predictor) and store it in the bundle."""
    # Imported here: `import raydisc.training` should not load evaluation's plotting.
    from ..ensemble.bundle import load_bundle, write_triage_policy
    from ..ensemble.triage import NEVER, TriagePolicy
    from ..evaluation.evaluate import event_keys, predict_split

    bundle = load_bundle(bundle_uri)
    meta, member_probs = predict_split(bundle, shards, regions, "validation")
    policy = TriagePolicy.fit(event_keys(meta), member_probs, meta["label"].to_numpy().astype(np.int64),
                              target_accuracy=target_accuracy,
                              fitted_on={"split": "validation", "regions": list(regions)})
    write_triage_policy(bundle_uri, policy)
    threshold = policy.confidence_threshold
    say(f"triage fitted on the validation split ({policy.fitted_on['events']} events, "
        f"{policy.fitted_on['recordings']} recordings): temperatures "
        f"{[round(t, 3) for t in policy.temperatures]}; confidence threshold for {percent(target_accuracy)} "
        + ("accuracy: unreachable (every event goes to review)" if threshold == NEVER
           else f"accuracy: {threshold:.4f}"))


__all__ = ["fit_triage_policy"]
