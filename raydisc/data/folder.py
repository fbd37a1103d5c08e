"""Import a folder of miniSEED files with a label table into a raydisc archive.

Most study data sets are a folder of miniSEED files (per event, per station, or
continuous day files) and a CSV with one row per event: id, origin time, location,
magnitude and type. :func:`import_folder` turns that into a normal archive region
(QuakeML + StationXML + ``waveforms/{event}.mseed``, :mod:`raydisc.data.archive_writer`),
so preprocessing, training, evaluation and re-labelling read it unchanged.

Waveform files are matched to events

* by file name (``match="pattern"``): a glob relative to the folder in which
  ``{event_id}`` stands for the event's id, e.g. ``{event_id}*.mseed`` or
  ``{event_id}/*.mseed``; or
* by time (``match="time"``): every file under the folder whose name matches
  ``file_glob`` is indexed by its time span (miniSEED headers only), and each event takes
  the data from ``window_before_s`` before to ``window_after_s`` after its origin.

Station metadata comes from one StationXML file or a folder of them (their networks
are combined as they are, complete or not: see :mod:`raydisc.data.inventory`).

Rows and files that cannot be used are recorded in ``import_rejects.csv`` with a
reason from :data:`raydisc.data.records.REJECT_REASONS`, naming the row or file; the
import goes on. A label table without a required column is refused as a whole, naming
the column. Re-running skips events whose file exists.
"""
from __future__ import annotations

import io
import math
import posixpath
from dataclasses import dataclass
from typing import Literal

import numpy as np
import obspy
import pandas as pd
from lxml import etree

from ..config import ConfigBase, ConfigError
from ..storage import filesystem, read_bytes
from .archive_writer import (event_done, make_event, quakeml_event_type, write_catalog, write_event_waveforms,
                             write_import_rejects, write_inventory)
from .ingest import read_mseed_bytes
from .records import IngestError, Reject

#: Short type codes of common catalogs (ANSS ComCat's ``eq``/``qb``/``ex``/``ls``) and
#: their QuakeML types; any table value is first looked up here, then as a QuakeML type.
#: ``noise`` (a noise window) is QuakeML's ``not existing``. The archive keeps the QuakeML
#: type; the label scheme of ``raydisc preprocess`` gives the class (or rejects it).
DEFAULT_TYPE_ALIASES: tuple[tuple[str, str], ...] = (
    ("eq", "earthquake"), ("qb", "quarry blast"), ("ex", "explosion"), ("blast", "quarry blast"),
    ("ls", "landslide"), ("noise", "not existing"),
)


@dataclass(frozen=True)
class FolderImportConfig(ConfigBase):
    """How a miniSEED folder and its label table are read (see the module docstring).

    Column options name the table's columns; ``depth_column`` (km) and
    ``magnitude_column`` are optional (depth 0 km, no magnitude when the table has no
    such column). ``origin_time_column`` holds any time :class:`obspy.UTCDateTime`
    reads (ISO 8601 recommended, UTC). ``window_before_s``/``window_after_s``: seconds
    of data kept around the origin time when matching by time; the default 30 s / 150 s
    covers the preprocessing window up to ~600 km epicentral distance.
    """

    region: str
    event_id_column: str = "event_id"
    origin_time_column: str = "origin_time"
    latitude_column: str = "latitude"
    longitude_column: str = "longitude"
    depth_column: str = "depth_km"
    magnitude_column: str = "magnitude"
    type_column: str = "event_type"
    match: Literal["pattern", "time"] = "pattern"
    filename_pattern: str = "{event_id}*.mseed"
    file_glob: str = "*.mseed"
    window_before_s: float = 30.0
    window_after_s: float = 150.0
    type_aliases: tuple[tuple[str, str], ...] = DEFAULT_TYPE_ALIASES

    def __post_init__(self) -> None:
        if not self.region or "/" in self.region:
            raise ConfigError(f"invalid region name {self.region!r}")
        if self.match not in ("pattern", "time"):
            raise ConfigError(f"match must be 'pattern' or 'time', got {self.match!r}")
        if self.match == "pattern" and "{event_id}" not in self.filename_pattern:
            raise ConfigError(f"filename_pattern {self.filename_pattern!r} must contain '{{event_id}}'")
        if not (self.window_before_s >= 0 and self.window_after_s > 0):
            raise ConfigError("need window_before_s >= 0 and window_after_s > 0")


@dataclass(frozen=True)
class _Row:
    event_id: str
    origin_time: float
    latitude: float
    longitude: float
    depth_km: float
    magnitude: float
    event_type: str


def read_label_table(uri: str, config: FolderImportConfig) -> tuple[list[_Row], list[Reject]]:
    """The usable rows of the label CSV, and a reject per row that is not.

    Raises :class:`IngestError` naming the file and the column when a required column
    is missing, or when the file is not a table.
    """
    try:
        table = pd.read_csv(io.BytesIO(read_bytes(uri)), dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise IngestError(f"{uri}: label table not found") from None
    except Exception as exc:
        raise IngestError(f"{uri}: cannot read the label table: {type(exc).__name__}: {exc}"[:300]) from None
    required = [config.event_id_column, config.origin_time_column, config.latitude_column,
                config.longitude_column, config.type_column]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise IngestError(f"{uri}: label table has no column(s) {missing} (columns: {list(table.columns)}); "
                          "name them with the column options")
    aliases = {k.lower(): v for k, v in config.type_aliases}
    rows, rejects = [], []
    for number, record in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        event_id = str(record[config.event_id_column]).strip()
        where = f"line {number}"

        def reject(reason: str, detail: str) -> None:
            rejects.append(Reject(config.region, event_id or "?", "*", reason, f"{where}: {detail}", uri))

        if not event_id or "/" in event_id:
            reject("bad_catalog_entry", f"event id {event_id!r} is empty or contains '/'")
            continue
        raw_type = str(record[config.type_column]).strip()
        event_type = quakeml_event_type(aliases.get(raw_type.lower(), raw_type))
        if event_type is None:
            reject("unknown_event_type", f"type {raw_type!r} is neither a QuakeML event type nor an alias")
            continue
        try:
            time = obspy.UTCDateTime(str(record[config.origin_time_column]).strip()).timestamp
            lat, lon = float(record[config.latitude_column]), float(record[config.longitude_column])
            depth = _optional_float(record.get(config.depth_column), 0.0)
            magnitude = _optional_float(record.get(config.magnitude_column), math.nan)
        except Exception as exc:  # UTCDateTime and float raise several types
            reject("bad_catalog_entry", f"unreadable origin: {type(exc).__name__}: {exc}")
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 360 and math.isfinite(depth)):
            reject("bad_catalog_entry", f"origin out of range: latitude {lat}, longitude {lon}, depth {depth} km")
            continue
        rows.append(_Row(event_id, time, lat, lon, depth, magnitude, event_type))
    return rows, rejects


def _optional_float(text, missing: float) -> float:
    text = "" if text is None else str(text).strip()
    return float(text) if text else missing


def read_stationxml(uri: str) -> tuple[bytes, list[str]]:
    """StationXML bytes of one file, or of all ``*.xml`` files of a folder combined
    (their ``Network`` elements in one document, kept as they are); and the files that
    could not be read (``"file: why"``). Raises :class:`IngestError` when none can."""
    fs, path = filesystem(uri)
    if not fs.isdir(path):
        return read_bytes(uri), []
    files = sorted(p for p in fs.find(path) if p.lower().endswith(".xml"))
    root, problems = None, []
    for name in files:
        try:
            document = etree.fromstring(fs.cat_file(name))
        except etree.XMLSyntaxError as exc:
            problems.append(f"{name}: not XML: {exc}"[:300])
            continue
        if root is None:
            root = document
            continue
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for network in document.iter(f"{ns}Network"):
            root.append(network)
    if root is None:
        raise IngestError(f"{uri}: no readable StationXML file ({'; '.join(problems) or 'no *.xml files'})")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), problems


def _read_file(fs, name: str, headonly: bool = False) -> obspy.Stream:
    data = fs.cat_file(name)
    if headonly:
        read_mseed_bytes(data, name)  # refuse truncated files before indexing them
        return obspy.read(io.BytesIO(data), format="MSEED", headonly=True)
    return read_mseed_bytes(data, name)


def _time_index(fs, folder: str, file_glob: str) -> tuple[list[tuple[str, float, float]], list[str]]:
    """``[(file, start, end)]`` (POSIX s) of the miniSEED files under ``folder`` whose
    name matches ``file_glob``, and the unreadable ones (``"file: why"``)."""
    index, problems = [], []
    for name in sorted(fs.glob(posixpath.join(folder, "**", file_glob))):
        try:
            stream = _read_file(fs, name, headonly=True)
        except IngestError as exc:
            problems.append(str(exc))
            continue
        if len(stream):
            index.append((name, min(t.stats.starttime.timestamp for t in stream),
                          max(t.stats.endtime.timestamp for t in stream)))
    return index, problems


def import_folder(waveforms: str, labels: str, stationxml: str, archive: str, config: FolderImportConfig) -> dict:
    """Write region ``config.region`` of ``archive`` from a miniSEED folder, a label
    CSV and StationXML (file or folder); see the module docstring.

    Returns ``{"events", "written", "skipped", "rejects": {reason: n}, "rejects_file"}``
    (``skipped``: events whose file an earlier run wrote).
    """
    fs, folder = filesystem(waveforms)
    if not fs.isdir(folder):
        raise IngestError(f"{waveforms}: waveform folder not found")
    rows, rejects = read_label_table(labels, config)
    inventory, xml_problems = read_stationxml(stationxml)
    rejects += [Reject(config.region, "*", "*", "unreadable_inventory", p, stationxml) for p in xml_problems]
    write_inventory(archive, config.region, inventory)
    write_catalog(archive, config.region, [
        make_event(config.region, r.event_id, r.origin_time, r.latitude, r.longitude, r.depth_km, r.magnitude,
                   r.event_type) for r in rows])

    index: list[tuple[str, float, float]] = []
    if config.match == "time":
        index, problems = _time_index(fs, folder, config.file_glob)
        rejects += [Reject(config.region, "*", "*", "unreadable_waveform_file", p, waveforms) for p in problems]
    starts = np.array([s for _, s, _ in index])
    ends = np.array([e for _, _, e in index])
    written = skipped = 0
    for row in rows:
        if event_done(archive, config.region, row.event_id):
            skipped += 1
            continue
        stream, problems = obspy.Stream(), []
        if config.match == "pattern":
            pattern = posixpath.join(folder, config.filename_pattern.format(event_id=row.event_id))
            names = sorted(fs.glob(pattern))
            window = None
        else:
            lo, hi = row.origin_time - config.window_before_s, row.origin_time + config.window_after_s
            names = [index[i][0] for i in np.flatnonzero((starts <= hi) & (ends >= lo))]
            window = (obspy.UTCDateTime(lo), obspy.UTCDateTime(hi))
        for name in names:
            try:
                part = _read_file(fs, name)
            except IngestError as exc:
                problems.append((name, str(exc)))
                continue
            stream += part.slice(*window) if window else part
        rejects += [Reject(config.region, row.event_id, "*", "unreadable_waveform_file", why, name)
                    for name, why in problems]
        if not len(stream):
            how = f"no file matches {config.filename_pattern!r}" if window is None else \
                f"no data from {window[0]} to {window[1]}"
            rejects.append(Reject(config.region, row.event_id, "*", "missing_waveform_file", how, waveforms))
            continue
        write_event_waveforms(archive, config.region, row.event_id, stream)
        written += 1
    uri = write_import_rejects(archive, config.region, rejects)
    counts: dict[str, int] = {}
    for r in rejects:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    return {"events": len(rows), "written": written, "skipped": skipped, "rejects": counts, "rejects_file": uri}


__all__ = ["DEFAULT_TYPE_ALIASES", "FolderImportConfig", "import_folder", "read_label_table", "read_stationxml"]
