"""Re-labelling a small catalog in this process: :meth:`raydisc.api.Ensemble.classify_catalog`.

The re-labelling job itself (:func:`raydisc.reprocess.pipeline.reprocess_archives`) runs,
with the ensemble already loaded, so every chunk is done here one after another without
Ray; its outputs go to a temporary folder and come back as pandas tables and the
annotated ObsPy catalog. The same tables and QuakeML as ``raydisc reprocess`` writes.
For archives of thousands of events, run ``raydisc reprocess`` on a Ray cluster instead.
"""
from __future__ import annotations

import glob
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import obspy
import pandas as pd

from ..data.fdsn import FetchConfig
from ..data.ingest import read_catalog, read_stations
from ..reprocess import outputs
from ..reprocess.pipeline import ReprocessConfig, reprocess_archives
from ..reprocess.sources import RegionSource
from ..storage import join

if TYPE_CHECKING:
    from .ensemble import Ensemble


@dataclass(frozen=True)
class CatalogClassification:
    """What re-labelling writes for one catalog, in memory.

    ``catalog``: the input catalog annotated (each classified event gets a comment with
    verdict, probability, number of stations, spread and bundle id, and the verdict's
    event type where it contradicts the original); ``stations`` / ``events`` /
    ``failures``: ``pandas.DataFrame`` of the re-labelling tables
    (:mod:`raydisc.reprocess.outputs`: probabilities dimensionless, ``distance_km`` in
    km, ``origin_time`` UTC); ``review``: the events whose verdict contradicts the
    catalog type (most confident first); ``summary``: counts.
    """

    catalog: obspy.Catalog
    stations: Any
    events: Any
    failures: Any
    review: Any
    summary: dict


def _write_obspy(obj, path: str, fmt: str) -> str:
    obj.write(path, format=fmt)
    return path


def fetch_event_waveforms(client, catalog_uri: str, inventory_uri: str, folder: str,
                          channel_priority: tuple[str, ...]) -> None:
    """Each catalog event's waveforms from an FDSN client (``get_waveforms_bulk``) into
    ``folder/{event_id}.mseed``: every station of the inventory, the bands of
    ``channel_priority``, from :attr:`FetchConfig.window_before_s` before to
    :attr:`FetchConfig.window_after_s` after the origin (``raydisc fetch``'s window).
    An event the service has no data for gets no file (a ``missing_waveform_file`` row)."""
    stations = read_stations(inventory_uri)
    for event in read_catalog(catalog_uri, "fdsn"):
        t0 = obspy.UTCDateTime(event.origin_time - FetchConfig.window_before_s)
        t1 = obspy.UTCDateTime(event.origin_time + FetchConfig.window_after_s)
        bulk = [(s.network, s.station, "*", f"{band}?", t0, t1) for s in stations.values() for band in channel_priority]
        try:
            stream = client.get_waveforms_bulk(bulk)
        except Exception:  # FDSNNoDataException and service errors: the event has no file
            continue
        if len(stream):
            stream.write(os.path.join(folder, f"{event.event_id}.mseed"), format="MSEED")


def waveform_format_of(waveforms: str) -> str:
    """``"events"`` for a folder of per-event files ``{event_id}.mseed`` (or any remote
    URI), ``"sds"`` for a local folder without them (an SDS archive's year folders)."""
    if os.path.isdir(waveforms) and not glob.glob(os.path.join(waveforms, "*.mseed")):
        return "sds"
    return "events"


def classify_catalog(
    ensemble: "Ensemble",
    catalog: obspy.Catalog | str,
    waveforms,
    inventory: obspy.Inventory | str,
    *,
    waveform_format: str | None = None,
    region: str = "catalog",
    reading: Mapping[str, Any] | None = None,
    events_per_chunk: int = 32,
) -> CatalogClassification:
    """Classify every event of ``catalog`` with ``ensemble`` and annotate the catalog.

    ``catalog``: an ObsPy ``Catalog`` or a QuakeML URI; ``inventory``: an ObsPy
    ``Inventory`` or a StationXML URI; ``waveforms``: a folder (or object-store URI) of
    per-event miniSEED files named ``{event_id}.mseed``, an SDS archive root, or an ObsPy
    FDSN client (``obspy.clients.fdsn.Client``: each event's waveforms are requested,
    see :func:`fetch_event_waveforms`). ``waveform_format``: ``"events"`` or ``"sds"``
    (default: :func:`waveform_format_of`); ``region`` names the catalog in the tables;
    ``reading``: raw-data fields of the preprocessing config to change for this data.
    """
    with tempfile.TemporaryDirectory(prefix="raydisc-catalog-") as tmp:
        catalog_uri = catalog if isinstance(catalog, str) else _write_obspy(catalog, join(tmp, "catalog.xml"), "QUAKEML")
        inventory_uri = (inventory if isinstance(inventory, str)
                         else _write_obspy(inventory, join(tmp, "inventory.xml"), "STATIONXML"))
        if hasattr(waveforms, "get_waveforms_bulk"):
            folder = join(tmp, "waveforms")
            os.makedirs(folder)
            config = ensemble.bundle.preprocess_config
            fetch_event_waveforms(waveforms, catalog_uri, inventory_uri, folder,
                                  tuple((reading or {}).get("channel_priority", config.channel_priority)))
            waveforms, waveform_format = folder, "events"
        source = RegionSource(region, catalog_uri, inventory_uri, waveforms,
                              waveform_format or waveform_format_of(waveforms))
        out = join(tmp, "out")
        summary = reprocess_archives([source], ensemble.uri, out, ReprocessConfig(events_per_chunk=events_per_chunk),
                                     reading=dict(reading) if reading else None, loaded_bundle=ensemble.bundle)
        tables = {t: outputs.read_results(out, t, [region]) for t in outputs.TABLES}
        annotated = obspy.read_events(join(out, "catalogs", f"{region}.xml"))
        frames = {t: (table.to_pandas() if table is not None else pd.DataFrame()) for t, table in tables.items()}
        review = pd.read_csv(join(out, "review", f"{region}.csv"))
    return CatalogClassification(annotated, frames["stations"], frames["events"], frames["failures"], review,
                                 summary)


__all__ = ["CatalogClassification", "classify_catalog", "fetch_event_waveforms", "waveform_format_of"]
