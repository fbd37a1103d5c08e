"""The tables beside a synthetic region's files: ``truth.csv`` (per event) and
``stations.csv`` (per sensor), as written by :mod:`raydisc.synthetic.generate`."""
from __future__ import annotations

import csv
import io
import math
from typing import Sequence

from ..storage import join
from .events import Network, SyntheticEvent, local_to_geographic
from .specs import RegionSpec
from .stations import StationPlan

TRUTH_COLUMNS = (
    "event_id",
    "true_type",
    "catalog_type",
    "magnitude",
    "depth_km",
    "latitude",
    "longitude",
    "origin_time",
    "quarry",
)
#: Added to ``truth.csv`` of regions with corrupt files: ``ok``, ``garbled`` or
#: ``truncated`` (see :data:`raydisc.synthetic.recording.CORRUPT_MODES`).
WAVEFORM_FILE_COLUMN = "waveform_file"
STATIONS_FILE = "stations.csv"
#: ``stations.csv``: one row per sensor. ``components`` is the station's component set
#: (ZNE letters), ``channels`` the sensor's SEED codes (space-separated), ``azimuth_1``
#: the azimuth of channel 1 (empty with N/E), ``response`` full / sensitivity / none,
#: ``in_inventory`` and ``coordinates`` 1 or 0 (coordinates: in the StationXML),
#: ``epoch_gap_start``/``_end`` the gap between the channel epochs (empty without),
#: ``defects`` the station's defects and a ``dual_sensor`` mark (space-separated; see
#: :attr:`raydisc.synthetic.stations.StationPlan.defects`).
STATION_COLUMNS = (
    "station",
    "location",
    "channels",
    "components",
    "sampling_rate_hz",
    "instrument",
    "primary",
    "azimuth_1",
    "latitude",
    "longitude",
    "elevation_m",
    "in_inventory",
    "response",
    "coordinates",
    "epoch_gap_start",
    "epoch_gap_end",
    "defects",
)
#: Added to ``truth.csv`` of archives with surface events: the slope site, the source
#: envelope's rise time (onset to peak, s) and duration (s), and the centre of its band
#: (Hz); empty for the other events.
SURFACE_COLUMNS = ("slope_site", "rise_s", "duration_s", "peak_hz")


def stations_uri(root: str, region: str) -> str:
    return join(root, region, STATIONS_FILE)


def truth_row(spec: RegionSpec, event: SyntheticEvent) -> dict:
    """The ``TRUTH_COLUMNS`` of ``event``: true type and hypocentre (magnitude empty
    for a noise window), plus :data:`SURFACE_COLUMNS`, which a writer keeps only for
    archives with surface events."""
    lat, lon = local_to_geographic(spec, event.east_km, event.north_km)
    surface = event.is_surface
    return {
        "event_id": event.event_id,
        "true_type": event.true_type,
        "catalog_type": event.catalog_type,
        "magnitude": "" if math.isnan(event.magnitude) else f"{event.magnitude:.2f}",
        "depth_km": f"{event.depth_km:.3f}",
        "latitude": f"{float(lat):.5f}",
        "longitude": f"{float(lon):.5f}",
        "origin_time": str(event.origin_time),
        "quarry": event.quarry,
        "slope_site": event.slope,
        "rise_s": f"{event.rise_s:g}" if surface else "",
        "duration_s": f"{event.duration_s:g}" if surface else "",
        "peak_hz": f"{event.peak_hz:g}" if surface else "",
    }


def station_rows(network: Network, plan: Sequence[StationPlan]) -> list[dict]:
    """The :data:`STATION_COLUMNS` rows of ``plan``, one per sensor."""
    rows = []
    for station in plan:
        i = station.index
        gap = station.epoch_gap
        for sensor in station.sensors:
            rows.append(
                {
                    "station": station.code,
                    "location": sensor.location,
                    "channels": " ".join(sensor.channel_codes),
                    "components": station.components if sensor.primary else "ZNE",
                    "sampling_rate_hz": f"{sensor.sampling_rate_hz:g}",
                    "instrument": sensor.instrument.name,
                    "primary": int(sensor.primary),
                    "azimuth_1": "" if station.azimuth_1 is None or not sensor.primary else f"{station.azimuth_1:.1f}",
                    "latitude": f"{float(network.latitude[i]):.5f}",
                    "longitude": f"{float(network.longitude[i]):.5f}",
                    "elevation_m": f"{float(network.elevation_m[i]):.0f}",
                    "in_inventory": int(station.in_inventory),
                    "response": station.response,
                    "coordinates": int(station.coordinates),
                    "epoch_gap_start": "" if gap is None else str(gap[0]),
                    "epoch_gap_end": "" if gap is None else str(gap[1]),
                    "defects": " ".join(station.defects),
                }
            )
    return rows


def csv_bytes(columns: Sequence[str], rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


__all__ = ["STATIONS_FILE", "STATION_COLUMNS", "SURFACE_COLUMNS", "TRUTH_COLUMNS", "WAVEFORM_FILE_COLUMN", "csv_bytes",
           "station_rows", "stations_uri", "truth_row"]
