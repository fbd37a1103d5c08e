"""The result of classifying one event: per-station verdicts and the event verdict.

One definition, used by the Serve endpoint (its JSON answer), the Python API
(:class:`raydisc.api.Classification`) and anything else that classifies one event's
recordings: :func:`classify_response` turns the members' probabilities of the cut
recordings into a :class:`ClassifyResponse`. Probabilities are dimensionless (each set
sums to 1); ``spread`` is :func:`~raydisc.ensemble.voting.ensemble_spread`; the event's
``confidence``, ``disagreement`` and ``triage`` are :mod:`raydisc.ensemble.triage`'s.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field

from ..data.ingest import Recording, Reject
from .triage import TriagePolicy
from .voting import aggregate_events, ensemble_spread, soft_vote


# The models carry no docstrings: pydantic would put them into the endpoint's OpenAPI
# schema, which stays as it was. What they hold:
# RejectOut: a recording that could not be used (NET.STA.LOC, reason code of
#   raydisc.data.records.REJECT_REASONS, short detail); StationResult: the ensemble's
#   verdict on one station recording; EventResult: the event verdict (mean of its
#   stations' probabilities); ClassifyResponse: one event classified (stations in the
#   order of the recordings, event verdict, rejected recordings).
class RejectOut(BaseModel):
    station: str
    reason: str
    detail: str


class StationResult(BaseModel):
    station: str = Field(..., description="NET.STA.LOC")
    components: str = Field(..., description="components used: 'ZNE', 'Z', 'ZN', ...")
    channels: list[str] = Field(..., description="SEED channel codes read, e.g. ['HHZ', 'HH1', 'HH2']")
    pick_source: str = Field(..., description="window reference: 'catalog' or 'predicted' P arrival, or 'origin'")
    response: str = Field(..., description="instrument correction: 'full', 'sensitivity' or 'none'")
    probabilities: dict[str, float] = Field(..., description="soft vote: mean of member probabilities")
    predicted_label: str
    spread: float = Field(..., description="std across members of the predicted class probability (0..0.5)")
    member_votes: list[str] = Field(..., description="each member's predicted class, in member order")
    member_probabilities: list[list[float]] = Field(..., description="n_members x n_classes")


class EventResult(BaseModel):
    event_id: str
    probabilities: dict[str, float] = Field(..., description="mean of the station probabilities")
    predicted_label: str
    n_stations: int
    confidence: float = Field(..., description="calibrated ensemble probability of the predicted label")
    disagreement: float = Field(..., description="mutual information between members, nats (0: all agree)")
    triage: Literal["auto", "review"] = Field(..., description="'review' when confidence is below the threshold")


class ClassifyResponse(BaseModel):
    bundle_id: str
    class_names: list[str]
    stations: list[StationResult]
    event: EventResult
    rejected: list[RejectOut] = Field(default_factory=list)


def classify_response(
    bundle_id: str,
    class_names: Sequence[str],
    recordings: Sequence[Recording],
    rejects: Sequence[Reject],
    member_probs: np.ndarray,
    event_id: str,
    triage: TriagePolicy | None = None,
    review_below: float | None = None,
) -> ClassifyResponse:
    """The result of one event from its members' probabilities.

    ``recordings``: the ``n`` cut recordings of the event (at least one), in the order of
    ``member_probs``, float ``(n_members, n, n_classes)`` softmax probabilities;
    ``rejects``: the recordings that could not be used. The station verdict is the soft
    vote, the event verdict the mean over its stations
    (:func:`~raydisc.ensemble.voting.aggregate_events`, rule ``"mean"``). Its triage is
    by the bundle's policy ``triage`` (None: temperatures 1, no threshold) with the
    threshold ``review_below`` when given.
    """
    names = list(class_names)
    probs = soft_vote(member_probs)
    spread = ensemble_spread(member_probs)
    _, event_probs = aggregate_events(np.zeros(len(recordings), dtype=int), probs, rule="mean")
    policy = triage if triage is not None else TriagePolicy.identity(len(member_probs))
    triaged, marks = policy.triage(np.zeros(len(recordings), dtype=int), member_probs, review_below=review_below)
    stations = [
        StationResult(
            station=r.key,
            components=r.components,
            channels=list(r.channel_codes),
            pick_source=r.pick_source,
            response=r.response_kind,
            probabilities=dict(zip(names, probs[i].tolist())),
            predicted_label=names[int(probs[i].argmax())],
            spread=float(spread[i]),
            member_votes=[names[int(k)] for k in member_probs[:, i].argmax(axis=1)],
            member_probabilities=member_probs[:, i].astype(np.float64).tolist(),
        )
        for i, r in enumerate(recordings)
    ]
    event = EventResult(event_id=event_id, probabilities=dict(zip(names, event_probs[0].tolist())),
                        predicted_label=names[int(event_probs[0].argmax())], n_stations=len(recordings),
                        confidence=float(triaged.confidence[0]), disagreement=float(triaged.disagreement[0]),
                        triage=marks[0])
    return ClassifyResponse(bundle_id=bundle_id, class_names=names, stations=stations, event=event,
                            rejected=[RejectOut(station=r.station, reason=r.reason, detail=r.detail) for r in rejects])


__all__ = ["ClassifyResponse", "EventResult", "RejectOut", "StationResult", "classify_response"]
