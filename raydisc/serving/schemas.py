"""Request and response models of the classification API (``/v1``).

Every request model forbids unknown fields (``extra="forbid"``), so a typo is a 422
naming the field instead of a silently ignored option. Times are ISO 8601 strings or
POSIX seconds; a time without a zone is UTC. Counts are raw digitizer counts,
sensitivities are overall instrument sensitivities in counts per (m/s), rates in Hz.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The answer of the classify routes is the project's one result schema.
from ..ensemble.results import ClassifyResponse, EventResult, RejectOut, StationResult

#: Version of the HTTP API; the paths carry its major number (``/v1/...``).
API_VERSION = "1.0.0"

#: Characters of the ``metadata`` query field of a raw-body miniSEED upload, at most:
#: percent-encoded, longer JSON would overflow the HTTP server's 16 KiB limit on a
#: request head (a 400 from the server instead of a documented answer). Longer
#: metadata go as a part of a multipart upload.
MAX_QUERY_METADATA_CHARS = 5000

#: Sampling rates (Hz) a request may declare: from 1 sample per 100 s (below any
#: bundle's rate, so rejected with the reason "sampling_rate_too_low") to 100 kHz.
MIN_SAMPLING_RATE_HZ, MAX_SAMPLING_RATE_HZ = 0.01, 100_000

#: Offset (s) of an arrays-form recording from the window reference, at most: windows
#: are tens of seconds around it; a day covers any recording worth sending.
MAX_START_OFFSET_S = 86_400.0

#: Overall sensitivities (counts per m/s) a request may declare: beyond this range the
#: corrected amplitudes overflow float32 model input (real instruments lie within 1e2-1e11).
MIN_SENSITIVITY, MAX_SENSITIVITY = 1e-6, 1e15

#: Stations per request, at most (one event of a dense network has a few hundred).
MAX_STATIONS = 1000

#: Optional request field: the confidence threshold of the event's triage for this request.
ReviewBelow = Annotated[float | None, Field(
    None, ge=0, le=1, description="the event gets triage 'review' when its confidence is below this "
                                  "(default: the server's setting, else the bundle's threshold)")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def posix_seconds(value: _dt.datetime) -> float:
    """POSIX seconds of a datetime; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.timestamp()


Sensitivity = Annotated[float, Field(ge=MIN_SENSITIVITY, le=MAX_SENSITIVITY)]


def _one_entry_per_station(stations: list) -> None:
    # Recordings are per station (NET.STA; the band priority chooses among its sensors):
    # two entries of one station would leave one of them unanswered.
    seen: set[str] = set()
    for s in stations:
        name = f"{s.network}.{s.station}"
        if name in seen:
            raise ValueError(f"station {name} is given more than once (one entry per station)")
        seen.add(name)


def _finite_positive(values: dict[str, float] | list[float], what: str):
    items = values.values() if isinstance(values, dict) else values
    if not all(math.isfinite(v) and v > 0 for v in items):
        raise ValueError(f"{what} must be finite and positive")
    return values


class EventMeta(_Strict):
    """The event: origin time and (optionally) hypocentre, used for the window
    reference when the bundle cuts relative to the origin, and for distances."""

    event_id: str = Field("request", max_length=128)
    origin_time: _dt.datetime | None = Field(None, description="Origin time (ISO 8601 or POSIX s, UTC)")
    latitude: float = Field(0.0, ge=-90, le=90, description="degrees")
    longitude: float = Field(0.0, ge=-180, le=180, description="degrees")
    depth_km: float = Field(0.0, ge=-10, le=1000, description="km")


class _Station(_Strict):
    """Identity and position shared by the station forms; subclasses add ``sensitivity``."""

    network: str = Field(..., min_length=1, max_length=8)
    station: str = Field(..., min_length=1, max_length=8)
    location: str = Field("", max_length=8)
    latitude: float = Field(0.0, ge=-90, le=90, description="degrees")
    longitude: float = Field(0.0, ge=-180, le=180, description="degrees")

    @field_validator("sensitivity", check_fields=False)  # the field is declared by each subclass
    @classmethod
    def _check_sensitivity(cls, v):
        return _finite_positive(v, "sensitivity")

    @property
    def key(self) -> str:
        return f"{self.network}.{self.station}.{self.location}"


class StationMeta(_Station):
    """One station's metadata for a miniSEED upload without StationXML."""

    elevation_m: float = 0.0
    channels: dict[Literal["Z", "N", "E"], str] = Field(
        ..., description="SEED channel code per component, e.g. {'Z': 'HHZ', 'N': 'HHN', 'E': 'HHE'}, "
                         "or {'Z': 'EHZ'} for a vertical-only station (Z is required)")
    sampling_rate_hz: float = Field(..., ge=MIN_SAMPLING_RATE_HZ, le=MAX_SAMPLING_RATE_HZ, description="Hz")
    sensitivity: dict[Literal["Z", "N", "E"], Sensitivity] = Field(
        ..., description="overall sensitivity per component of `channels`, counts per (m/s)")
    p_time: _dt.datetime | None = Field(None, description="P pick time (ISO 8601 or POSIX s, UTC)")


class MseedMetadata(_Strict):
    """Metadata sent with a miniSEED upload (``metadata`` query or form field, JSON).

    Either ``stations`` (full metadata) or, when a StationXML file is uploaded
    alongside, ``picks``: ``{"NET.STA.LOC": P pick time}``.
    """

    event: EventMeta = Field(default_factory=EventMeta)
    stations: list[StationMeta] = Field(default_factory=list, max_length=MAX_STATIONS)
    picks: dict[str, _dt.datetime] = Field(default_factory=dict, max_length=MAX_STATIONS)
    review_below: ReviewBelow = None

    @model_validator(mode="after")
    def _check_stations(self):
        _one_entry_per_station(self.stations)
        return self


class StationArrays(_Station):
    """One station's raw recording as JSON arrays."""

    counts: list[list[float]] = Field(
        ..., min_length=1, max_length=3,
        description="raw counts, 3 x n (components Z, N, E) or 1 x n (a vertical-only station); rows of equal length")
    sampling_rate_hz: float = Field(..., ge=MIN_SAMPLING_RATE_HZ, le=MAX_SAMPLING_RATE_HZ, description="Hz")
    sensitivity: list[Sensitivity] = Field(..., min_length=1, max_length=3,
                                     description="counts per (m/s) for each row of counts (Z, N, E or Z)")
    start_s: float = Field(
        ..., ge=-MAX_START_OFFSET_S, le=MAX_START_OFFSET_S, description="time of the first sample relative to the window reference of the "
                         "bundle (the P pick, or the origin time), in seconds")


class ArraysRequest(_Strict):
    """``POST /v1/classify/arrays``: recordings of one event as arrays."""

    event: EventMeta = Field(default_factory=EventMeta)
    stations: list[StationArrays] = Field(..., min_length=1, max_length=MAX_STATIONS)
    on_reject: Literal["fail", "skip"] = Field(
        "fail", description="'fail': any unusable station is a 422; 'skip': classify the rest")
    review_below: ReviewBelow = None

    @model_validator(mode="after")
    def _check_stations(self):
        _one_entry_per_station(self.stations)
        return self


class UriRequest(_Strict):
    """``POST /v1/classify/uris``: one event in object storage (read with raydisc.storage)."""

    mseed_uri: str = Field(..., max_length=2048)
    stationxml_uri: str = Field(..., max_length=2048)
    quakeml_uri: str = Field(..., max_length=2048)
    event_id: str | None = Field(None, description="event to take from the QuakeML (default: the only one)")
    on_reject: Literal["fail", "skip"] = "fail"
    review_below: ReviewBelow = None


class ErrorResponse(BaseModel):
    detail: str
    rejected: list[RejectOut] = Field(default_factory=list)


class InfoResponse(BaseModel):
    api_version: str
    bundle_id: str
    architecture: str
    hparams: dict
    input_kind: str
    input_shape: list[int]
    class_names: list[str]
    label_map: dict[str, int]
    triage: dict
    members: list[dict]
    best_member: int
    preprocess_config: dict
    created_at: str
    composition: str
    max_body_bytes: int
    auth_required: bool


__all__ = ["API_VERSION", "ArraysRequest", "ClassifyResponse", "ErrorResponse", "EventMeta", "EventResult",
           "InfoResponse", "MAX_QUERY_METADATA_CHARS", "MAX_START_OFFSET_S", "MAX_STATIONS", "MseedMetadata",
           "RejectOut", "StationArrays", "StationMeta", "StationResult", "UriRequest", "posix_seconds"]
