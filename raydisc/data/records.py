"""What ingestion reports: errors for whole files, and one reject row per recording that
could not be used, with a reason from :data:`REJECT_REASONS`."""
from __future__ import annotations

from dataclasses import dataclass

#: Longest ``detail`` of a reject row (characters). Details name the file, event,
#: station and channel; a longer text is cut, so that no payload ends up in a table or
#: an error message.
MAX_DETAIL_CHARS = 300

#: Every reject reason, with what it means. ``not_recorded`` is not a loss (the station
#: was operating but the event file holds no data of it); every other reason is a
#: recording, event or file that exists and could not be used.
REJECT_REASONS: dict[str, str] = {
    "unreadable_catalog": "a region's QuakeML catalog cannot be read (the whole region)",
    "unreadable_inventory": "a region's StationXML inventory cannot be read (the whole region)",
    "bad_catalog_entry": "the catalog entry of the event cannot be read (no origin, unreadable time, ...)",
    "unknown_event_type": "the event type is not in the label scheme",
    "missing_waveform_file": "the event has no waveform file",
    "unreadable_waveform_file": "the waveform file cannot be read (corrupt or truncated)",
    "no_station_metadata": "data of a station that the inventory lacks, or no channel epoch covers the event time",
    "not_recorded": "an operating station of the inventory has no data for this event (not a loss)",
    "missing_component": "no vertical channel of the allowed bands (channel_priority) has data",
    "sampling_rate_mismatch": "the components of a recording are sampled at different rates",
    "sampling_rate_too_low": "the sampling rate does not cover the pass band",
    "no_response": "a channel has no instrument response (nor sensitivity)",
    "no_station_coordinates": "the P arrival must be predicted but the station has no coordinates",
    "no_p_pick": "the catalog has no P pick for the station (pick_source 'catalog')",
    "gap": "gaps, overlaps or masked samples in the window",
    "too_short": "the data do not cover the window",
    "nan": "non-finite samples in the window",
    "clipped": "samples reach the digitizer's full scale",
    "preprocessing_error": "preprocessing failed or produced non-finite values",
}
#: Reasons that do not mean data was lost.
NOT_LOSSES = frozenset({"not_recorded"})


class IngestError(RuntimeError):
    """A whole file (catalog, inventory or waveform file) cannot be read."""


def cap(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Reject:
    """A recording (or a whole event when ``station == "*"``) that could not be used.

    ``station`` is ``NET.STA.LOC``; ``reason`` a key of :data:`REJECT_REASONS`;
    ``detail`` (at most :data:`MAX_DETAIL_CHARS`) says what exactly, naming the channel;
    ``source`` the file or service the data came from.
    """

    region: str
    event_id: str
    station: str
    reason: str
    detail: str
    source: str

    def __post_init__(self) -> None:
        if self.reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}; known: {sorted(REJECT_REASONS)}")
        object.__setattr__(self, "detail", cap(self.detail))


__all__ = ["IngestError", "MAX_DETAIL_CHARS", "NOT_LOSSES", "REJECT_REASONS", "Reject", "cap"]
