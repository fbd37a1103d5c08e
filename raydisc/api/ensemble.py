"""Classify events from Python: a trained ensemble bundle and ObsPy objects in, verdicts out.

:class:`Ensemble` wraps the one bundle loader (:func:`raydisc.ensemble.load_bundle`), the
one ingestion (:func:`raydisc.data.ingest.cut_recordings_from_stream`) and
preprocessing (:func:`raydisc.data.chunks.preprocess_isolating`) code, and the one
result schema (:func:`raydisc.ensemble.results.classify_response`): the same event gives
the same probabilities here, at the Serve endpoint and in the re-labelling tables.
Nothing here needs Ray.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import obspy

from ..config import with_raw_data
from ..data.chunks import preprocess_isolating
from ..data.ingest import EventInfo, StationInfo, cut_recordings_from_stream, read_catalog, read_stations
from ..data.records import NOT_LOSSES
from ..ensemble import EnsembleBundle, load_bundle
from ..ensemble.results import classify_response
from .classification import Classification, NoUsableRecordingError


@dataclass(frozen=True)
class EnsembleInfo:
    """What an ensemble is: ``architecture`` (``spectrogram_cnn`` / ``waveform_cnn``) and
    its ``hparams``; ``members`` (how many) and per member its ``metrics`` (``seed``,
    ``validation_loss``, ``validation_accuracy``, ...) with the ``best_member`` index;
    ``classes`` (probability order) and the ``label_map`` (catalog event type -> class);
    ``input_kind`` and ``input_shape`` of the model input (``(3, 41, 89)`` log10 power
    spectrograms or ``(3, 3600)`` waveforms, components Z, N, E); ``preprocessing``:
    the bundle's preprocessing config (windows in s, band in Hz, target rate, ...);
    ``training_data``: the regions, shard folder and class counts it was trained on
    (empty for bundles made outside ``raydisc train``)."""

    bundle_id: str
    uri: str
    architecture: str
    hparams: dict[str, Any]
    members: int
    metrics: list[dict[str, Any]]
    best_member: int
    classes: tuple[str, ...]
    label_map: dict[str, int]
    input_kind: str
    input_shape: tuple[int, ...]
    preprocessing: dict[str, Any]
    training_data: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    #: The bundle's triage policy (:meth:`raydisc.ensemble.TriagePolicy.to_dict`).
    triage: dict[str, Any] = field(default_factory=dict)


#: Provenance fields that describe the training data (see raydisc.training.ensemble).
_TRAINING_DATA_KEYS = ("regions", "shards", "train_class_counts", "class_weights", "init_bundle")

PicksLike = Mapping[str, Any] | list


def _posix(value: Any) -> float:
    """POSIX seconds of an ``obspy.UTCDateTime``, ``datetime`` (naive = UTC), ISO string or number."""
    if isinstance(value, (int, float)):
        return float(value)
    return float(obspy.UTCDateTime(value).timestamp)


def _p_picks(picks: PicksLike) -> dict[str, dict[str, float]]:
    """``{"NET.STA.LOC": {"P": t}}`` from a mapping of station keys (``NET.STA.LOC``, or
    ``NET.STA`` for any location) to P times, or from ObsPy ``Pick`` objects (P phases)."""
    out: dict[str, dict[str, float]] = {}
    if isinstance(picks, Mapping):
        for key, time in picks.items():
            key = key if key.count(".") >= 2 else f"{key}."
            out[key] = {"P": _posix(time)}
        return out
    for pick in picks:
        if (pick.phase_hint or "").upper() != "P":
            continue
        w = pick.waveform_id
        out[f"{w.network_code or ''}.{w.station_code or ''}.{w.location_code or ''}"] = {"P": _posix(pick.time)}
    return out


def event_info_of(event: obspy.core.event.Event | obspy.core.event.Origin | None, picks: PicksLike | None,
                  region: str = "") -> EventInfo:
    """The :class:`~raydisc.data.ingest.EventInfo` of an ObsPy ``Event`` (read by the
    project's catalog reader, as its QuakeML would be: preferred origin and magnitude,
    type, P/S picks), of an
    ``Origin`` (no type, no picks), or of nothing (then ``picks`` must give every
    station's P arrival). ``picks`` replace the event's own P picks station by station."""
    if isinstance(event, obspy.core.event.Event):
        [info] = read_catalog(event, region)
    elif isinstance(event, obspy.core.event.Origin):
        depth = event.depth / 1000.0 if event.depth is not None else 0.0
        info = EventInfo(str(event.resource_id).rsplit("/", 1)[-1] or "event", region, "", None,
                         _posix(event.time), float(event.latitude), float(event.longitude), depth, math.nan, {})
    elif event is None:
        if not picks:
            raise ValueError("without an event or origin, picks must give the P arrival of every station")
        info = EventInfo("event", region, "", None, math.nan, math.nan, math.nan, 0.0, math.nan, {})
    else:
        raise TypeError(f"event must be an obspy Event, Origin or None, got {type(event).__name__}")
    if picks:
        merged = {k: dict(v) for k, v in info.picks.items()}
        for key, pick in _p_picks(picks).items():
            merged.setdefault(key, {}).update(pick)
        info = replace(info, picks=merged)
    return info


def stations_of(inventory: obspy.Inventory | str | Mapping[str, StationInfo]) -> dict[str, StationInfo]:
    """Station records keyed ``NET.STA`` of an ObsPy ``Inventory``, a StationXML
    path/URI, or such records already made."""
    if isinstance(inventory, (obspy.Inventory, str)):
        return read_stations(inventory)
    if isinstance(inventory, Mapping):
        return dict(inventory)
    raise TypeError(f"inventory must be an obspy Inventory, a StationXML URI or station records, "
                    f"got {type(inventory).__name__}")


class Ensemble:
    """A trained soft-voting ensemble, for classifying events in this process.

    Load with :meth:`load`; :meth:`classify` classifies one event from an ObsPy stream,
    :meth:`classify_catalog` every event of a catalog (as re-labelling does, without Ray).
    """

    def __init__(self, bundle: EnsembleBundle):
        self.bundle = bundle

    @classmethod
    def load(cls, uri: str, device: str = "cpu") -> "Ensemble":
        """The bundle at ``uri`` (a folder, or an object-store URI such as
        ``s3://bucket/bundles/alpine``), loaded by :func:`raydisc.ensemble.load_bundle`
        onto ``device`` (``"cpu"``, ``"cuda"``). Raises
        :class:`raydisc.ensemble.BundleError` naming what is wrong."""
        return cls(load_bundle(uri, map_location=device))

    @property
    def uri(self) -> str:
        """Where the bundle was loaded from."""
        return self.bundle.uri

    @property
    def info(self) -> EnsembleInfo:
        """Architecture, members and their metrics, classes, preprocessing, training data."""
        b = self.bundle
        return EnsembleInfo(
            bundle_id=b.bundle_id, uri=b.uri, architecture=b.architecture, hparams=dict(b.manifest["hparams"]),
            members=len(b.members), metrics=[dict(m) for m in b.member_metrics], best_member=b.best_member,
            classes=b.class_names, label_map=dict(b.label_map), input_kind=b.input_kind, input_shape=b.input_shape,
            preprocessing=dict(b.manifest["preprocess_config"]),
            training_data={k: b.provenance[k] for k in _TRAINING_DATA_KEYS if k in b.provenance},
            created_at=b.created_at, triage=b.triage_policy.to_dict())

    def __repr__(self) -> str:
        return (f"Ensemble({self.bundle.uri!r}: {len(self.bundle.members)} x {self.bundle.architecture}, "
                f"classes {list(self.bundle.class_names)}, bundle {self.bundle.bundle_id})")

    def classify(
        self,
        stream: obspy.Stream,
        inventory: obspy.Inventory | str | Mapping[str, StationInfo],
        event: obspy.core.event.Event | obspy.core.event.Origin | None = None,
        picks: PicksLike | None = None,
        *,
        event_id: str | None = None,
        reading: Mapping[str, Any] | None = None,
        review_below: float | None = None,
    ) -> Classification:
        """Classify one event from its raw recordings.

        ``stream``: raw counts of one or many stations, vertical-only or 3-component (any
        band the bundle's channel priority knows, numbered horizontals rotated to N/E);
        ``inventory``: their StationXML (``obspy.Inventory`` or a URI), for coordinates,
        orientations and responses; ``event``: the ObsPy ``Event`` (preferred origin,
        type and P picks are used) or just an ``Origin``; ``picks``: P arrivals that
        replace the event's, as ``{"NET.STA.LOC": UTCDateTime}`` or ObsPy ``Pick``
        objects; stations without a pick get one predicted from the origin (1-D model of
        the bundle's config) unless the bundle says otherwise. ``event_id`` names the
        event (default: the event's id); ``reading``: raw-data fields of the
        preprocessing config to change for this data (:func:`raydisc.config.with_raw_data`:
        ``channel_priority``, ``pick_source``, ``response_removal``, ...);
        ``review_below``: the event's triage is ``review`` when its confidence is below
        this (default: the bundle's triage threshold).

        Every station goes through the project's cutting rules and preprocessing; the
        unusable ones are listed in ``result.rejects`` with their reasons. Raises
        :class:`NoUsableRecordingError` when none is left.
        """
        config = self.bundle.preprocess_config
        if reading:
            config = with_raw_data(config, dict(reading))
        info = event_info_of(event, picks)
        if event_id is not None:
            info = replace(info, event_id=event_id)
        source = "stream"
        recordings, rejects = cut_recordings_from_stream(stream, info, stations_of(inventory), config, source=source)
        # The one failure isolation of the jobs: same reasons as the re-labelling tables.
        recordings, inputs, failed = preprocess_isolating(recordings, config, source, (self.bundle.input_kind,))
        x = inputs[self.bundle.input_kind]
        rejects += failed
        if not recordings:
            losses = [r for r in rejects if r.reason not in NOT_LOSSES] or rejects
            reasons = "; ".join(f"{r.station}: {r.reason} ({r.detail})" for r in losses[:10])
            raise NoUsableRecordingError(f"event {info.event_id}: no usable station recording: {reasons}", rejects)
        member = self.bundle.member_probabilities(x)
        response = classify_response(self.bundle.bundle_id, self.bundle.class_names, recordings, rejects, member,
                                     info.event_id, self.bundle.triage_policy, review_below)
        return Classification(response, recordings, rejects, member, info, source, dict(self.bundle.label_map),
                              self.bundle.triage_policy, review_below)

    def classify_catalog(self, catalog, waveforms, inventory, **options):
        """Every event of ``catalog`` classified and the catalog annotated, as
        re-labelling does, in this process: see :func:`raydisc.api.catalog.classify_catalog`
        for the arguments and the result."""
        from .catalog import classify_catalog

        return classify_catalog(self, catalog, waveforms, inventory, **options)


__all__ = ["Ensemble", "EnsembleInfo", "event_info_of", "stations_of"]
