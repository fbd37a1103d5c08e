"""Inputs of a reprocessing run: one (catalog, inventory, waveform archive) triple per region.

A waveform archive is either a folder of per-event miniSEED files named
``{event_id}.mseed`` (the raydisc layout, ``format="events"``; local or object storage)
or an SDS continuous archive (``format="sds"``; local folders, see
:mod:`raydisc.data.sds`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from ..config import PreprocessConfig
from ..data import layout
from ..data import sds
from ..data.ingest import EventInfo, Recording, Reject, StationInfo, cut_recordings, cut_recordings_from_stream
from ..storage import join

WAVEFORM_FORMATS = ("events", "sds")


@dataclass(frozen=True)
class RegionSource:
    """Where one region's inputs are: URIs of the QuakeML catalog, the StationXML
    inventory and the waveform archive (``format`` ``"events"`` or ``"sds"``)."""

    region: str
    catalog: str
    inventory: str
    waveforms: str
    format: str = "events"

    def __post_init__(self) -> None:
        if self.format not in WAVEFORM_FORMATS:
            raise ValueError(f"region {self.region}: waveform format must be one of {WAVEFORM_FORMATS}, got {self.format!r}")
        if not self.region or "/" in self.region:
            raise ValueError(f"invalid region name {self.region!r}")
        if self.format == "sds":
            sds.local_root(self.waveforms)  # fail early, in the driver, for remote SDS roots

    def waveform_uri(self, event_id: str) -> str:
        """The per-event file of ``event_id`` (format ``"events"``), or the SDS root."""
        return join(self.waveforms, f"{event_id}.mseed") if self.format == "events" else self.waveforms


def sources_from_archive(root: str, regions: Sequence[str] | None = None) -> list[RegionSource]:
    """Sources of ``regions`` (default: all) of an archive in raydisc layout."""
    names = list(regions) if regions else layout.list_regions(root)
    if not names:
        raise FileNotFoundError(f"{root}: no regions found (expected {{region}}/{layout.CATALOG_FILE})")
    return [
        RegionSource(r, layout.catalog_uri(root, r), layout.inventory_uri(root, r), join(root, r, layout.WAVEFORM_DIR))
        for r in names
    ]


def cut_event(
    source: RegionSource, event: EventInfo, stations: dict[str, StationInfo], config: PreprocessConfig
) -> tuple[list[Recording], list[Reject]]:
    """Cut every station's window of ``event`` from the region's waveform archive.

    Reprocessing classifies every catalog event, including those whose catalog type is
    not in the label map (ingest rejects those for *training*, where the type is the
    label); the cut recordings of such events carry ``label=-1`` and their rows record
    the catalog class as missing. Never raises for bad data: see
    :func:`raydisc.data.ingest.cut_recordings` for the reject reasons.
    """
    if event.label is None:
        event = dataclasses.replace(event, label=-1)
    if source.format == "events":
        return cut_recordings(source.waveform_uri(event.event_id), event, stations, config)
    stream, errors = sds.read_event_stream(source.waveforms, event, stations, config)
    usable = {k: v for k, v in stations.items() if k not in errors}
    recordings, rejects = cut_recordings_from_stream(stream, event, usable, config, source=source.waveforms)
    rejects += [
        Reject(event.region, event.event_id, key, "unreadable_waveform_file", detail, source.waveforms)
        for key, detail in sorted(errors.items())
    ]
    return recordings, rejects


__all__ = ["RegionSource", "WAVEFORM_FORMATS", "sources_from_archive", "cut_event"]
