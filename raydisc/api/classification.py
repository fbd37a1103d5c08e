"""The result of :meth:`raydisc.api.Ensemble.classify`: one event's station recordings
and their verdicts.

It holds the endpoint's answer (:attr:`Classification.response`, the project's one result
schema, :class:`raydisc.ensemble.results.ClassifyResponse`) and gives the re-labelling
tables' rows (:meth:`Classification.to_pandas`, the columns of
:func:`raydisc.reprocess.outputs.station_schema` and ``event_schema``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..data.ingest import EventInfo, Recording, Reject
from ..ensemble.results import ClassifyResponse, EventResult, StationResult
from ..ensemble.triage import TriagePolicy
from ..labels import EVENT_TYPE_TO_CLASS
from ..reprocess.tables import recording_columns, result_tables


class NoUsableRecordingError(ValueError):
    """No station recording of the event could be classified; ``rejects`` says why for
    each (reason codes: :data:`raydisc.data.records.REJECT_REASONS`)."""

    def __init__(self, message: str, rejects: list[Reject]):
        super().__init__(message)
        self.rejects = rejects


@dataclass(frozen=True)
class Classification:
    """One event classified by an ensemble.

    ``response``: per-station results, event verdict and rejected recordings, exactly as
    the Serve endpoint answers (``response.model_dump()`` is its JSON);
    ``recordings``: the ``n`` cut station recordings, in the order of ``response.stations``;
    ``rejects``: the recordings that could not be used, with reasons;
    ``member_probabilities``: float32 ``(n_members, n, n_classes)`` softmax outputs;
    ``event_info``: the event as read (origin POSIX s, degrees, km; picks);
    ``source``: what the waveforms were (names the data in the tables);
    ``label_map``: the bundle's catalog event type -> class (the tables' ``catalog_class``);
    ``triage``: the bundle's triage policy and ``review_below`` the threshold override
    the event's ``confidence`` / ``triage`` were computed with.
    """

    response: ClassifyResponse
    recordings: list[Recording]
    rejects: list[Reject]
    member_probabilities: np.ndarray
    event_info: EventInfo
    source: str = "stream"
    label_map: dict[str, int] = field(default_factory=lambda: dict(EVENT_TYPE_TO_CLASS))
    triage: TriagePolicy | None = None
    review_below: float | None = None

    @property
    def class_names(self) -> list[str]:
        """Class names in probability-column order, e.g. ``["earthquake", "blast"]``."""
        return self.response.class_names

    @property
    def stations(self) -> list[StationResult]:
        """Per station: probabilities, verdict, spread, member votes, components, pick source."""
        return self.response.stations

    @property
    def event(self) -> EventResult:
        """The event verdict (mean of the station probabilities), its number of stations,
        confidence, disagreement and triage (``auto`` / ``review``)."""
        return self.response.event

    @property
    def probabilities(self) -> np.ndarray:
        """Soft-voted station probabilities, float ``(n, n_classes)``."""
        return np.array([[s.probabilities[c] for c in self.class_names] for s in self.stations])

    @property
    def distances_km(self) -> np.ndarray:
        """Epicentral distance of each station recording (km; NaN without coordinates), ``(n,)``."""
        return np.array([r.distance_km for r in self.recordings], dtype=np.float64)

    def to_pandas(self, level: Literal["stations", "events"] = "stations"):
        """The re-labelling tables' rows of this event as a ``pandas.DataFrame``.

        ``"stations"``: one row per recording (sorted by station), the columns of
        :func:`raydisc.reprocess.outputs.station_schema`: ids, ``components``,
        ``pick_source``, ``response``, ``origin_time`` (UTC), ``catalog_type``,
        ``distance_km`` (km), ``sampling_rate`` (Hz), ``p_<class>``, ``verdict``,
        ``probability``, ``spread``, ``member_probabilities`` (``n_members x n_classes``),
        ``bundle_id``, ``input_hash``, ``source``. ``"events"``: the one event row of
        :func:`~raydisc.reprocess.outputs.event_schema` (``contradicts_catalog``, ...).
        """
        if level not in ("stations", "events"):
            raise ValueError(f"level must be 'stations' or 'events', got {level!r}")
        columns = recording_columns(self.recordings, self.event_info.region, [r.event for r in self.recordings],
                                    lambda event_id: self.source, self.label_map)
        stations, events = result_tables(columns, self.member_probabilities.transpose(1, 0, 2), self.class_names,
                                         self.response.bundle_id, self.event_info.region, self.triage,
                                         self.review_below)
        return (stations if level == "stations" else events).to_pandas()


__all__ = ["Classification", "NoUsableRecordingError"]
