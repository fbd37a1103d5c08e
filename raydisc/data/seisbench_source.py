"""SeisBench-format datasets as input: traces -> the archive reader's recordings -> shards.

Each metadata row (one station's trace of one event) becomes an ObsPy stream, one
trace per component of ``trace_component_order`` (channel ``{trace_channel}{component}``,
e.g. ``HHZ``; ``1``/``2`` horizontals stay numbered), and is cut by
:func:`raydisc.data.recordings.cut_recordings_from_stream`, the archive reader's own
code: same channel choice, rotation, window, checks and rejects. So the same traces
give the same :class:`~raydisc.data.recordings.Recording` objects, and the same model
inputs, whether they came from an archive or a SeisBench dataset.

* **Labels**: ``source_type`` (a QuakeML event type such as ``earthquake``,
  ``explosion``, ``quarry blast``) through the label scheme (:mod:`raydisc.labels`,
  binary by default); SeisBench's class names (``surface event``, ``noise``) count
  where the scheme has a class of that name (the four-class scheme). Other types
  (empty, or ``surface event`` in the binary scheme) are rejected ``unknown_event_type``.
* **Window**: around ``trace_P_arrival_sample`` (the catalog pick), else the P arrival
  predicted from ``source_*`` and ``station_*`` coordinates, as for archives.
* **Units and responses**: SeisBench stores no responses. With ``inventory`` (a
  StationXML of the dataset's stations) each trace's channels take their responses from
  it; without, traces in physical velocity (``/data_format/unit`` m/s) are used as they
  are, and traces in counts are rejected ``no_response`` unless
  ``allow_missing_response`` (then used in counts: the inputs are normalised per
  recording).
* **Split**: the dataset's ``split`` column (``train``/``dev``/``test``) is kept
  (``split="dataset"``; rows with another value, or a dataset without the column, get
  raydisc's split), or replaced by raydisc's event-wise, class-stratified split
  (``split="raydisc"``).

:func:`run_seisbench_preprocessing` fans the dataset out over Ray Data: the driver reads
only the metadata tables and cuts each chunk into ranges of ``traces_per_task`` rows;
each task opens its chunk's HDF5 file (local or ``s3://``), reads its rows' traces,
cuts, preprocesses and writes one shard of the normal shard folder. A re-run skips
complete shards.
"""
from __future__ import annotations

import logging
import math
import pickle
import posixpath
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import obspy

from ..config import ConfigBase, ConfigError, PipelineConfig, PreprocessConfig, SplitConfig
from ..labels import DEFAULT_SCHEME, LabelScheme
from ..storage import exists
from .catalog import EventInfo
from .inventory import _VELOCITY_UNITS, ChannelInfo, StationInfo, read_stations
from .chunks import preprocess_isolating
from .pipeline import run_shard_tasks, write_shard
from .recordings import Recording, cut_recordings_from_stream
from .records import IngestError, Reject, cap
from .seisbench_format import SPLIT_NAMES, list_chunks, open_waveforms, read_data_format, read_metadata, read_trace, waveforms_uri
from .shards import SCHEMA_VERSION, DatasetInfo, claim_dataset, claim_label_scheme, shard_uri, summarize
from .splits import assign_splits

log = logging.getLogger(__name__)

#: Metadata columns without which a dataset cannot be read at all.
REQUIRED_COLUMNS = ("trace_name", "trace_start_time", "station_code", "source_type")
#: Columns that may hold the P arrival (sample index from the trace start), by preference.
P_SAMPLE_COLUMNS = ("trace_P_arrival_sample", "trace_p_arrival_sample", "trace_P1_arrival_sample",
                    "trace_Pg_arrival_sample")
#: Columns a task reads (others stay in the driver).
_COLUMNS = (*REQUIRED_COLUMNS, *P_SAMPLE_COLUMNS, "trace_sampling_rate_hz", "trace_dt_s", "trace_channel",
            "trace_component_order", "station_network_code", "station_location_code", "station_latitude_deg",
            "station_longitude_deg", "station_elevation_m", "source_id", "source_origin_time", "source_latitude_deg",
            "source_longitude_deg", "source_depth_km", "source_magnitude", "split")
#: Azimuth and dip (degrees, SEED conventions) of components named by a letter.
_ORIENTATION = {"Z": (0.0, -90.0), "N": (0.0, 0.0), "E": (90.0, 0.0)}


@dataclass(frozen=True)
class SeisBenchConfig(ConfigBase):
    """How a SeisBench dataset is read (see the module docstring). ``region``: the
    region name of its shards (default: the dataset folder's name); ``chunks``: the
    chunks to read (default: all); ``inventory``: StationXML URI with the responses
    (optional)."""

    region: str = ""
    split: Literal["dataset", "raydisc"] = "dataset"
    traces_per_task: int = 256
    inventory: str = ""
    chunks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.split not in ("dataset", "raydisc"):
            raise ConfigError(f"split must be 'dataset' or 'raydisc', got {self.split!r}")
        if self.traces_per_task < 1:
            raise ConfigError("traces_per_task must be >= 1")
        if "/" in self.region:
            raise ConfigError(f"invalid region name {self.region!r}")


@dataclass(frozen=True)
class SeisBenchTask:
    """One shard: a range of metadata rows of one chunk (plain data, cheap to ship)."""

    root: str
    chunk: str
    output: str
    region: str
    index: int
    rows: tuple[dict, ...]
    splits: dict[str, str]
    stations: dict[str, StationInfo] | None
    scheme: LabelScheme = DEFAULT_SCHEME


def source_label(source_type: str, scheme: LabelScheme) -> int | None:
    """Class of a SeisBench ``source_type`` in ``scheme``: as a QuakeML event type, else
    as one of the scheme's class names (SeisBench datasets name some sources by class:
    ``surface event``, ``noise``); None when neither."""
    label = scheme.class_in(source_type)
    if label is None and source_type.strip().lower() in scheme.class_names:
        label = scheme.class_names.index(source_type.strip().lower())
    return label


def _value(row: dict, column: str, default=None):
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return default
    return value


def event_id_of(row: dict) -> str:
    """The event of a row: ``source_id``, else its origin time, else the trace name."""
    return str(_value(row, "source_id") or _value(row, "source_origin_time") or row["trace_name"])


def _time(text) -> float:
    return obspy.UTCDateTime(str(text)).timestamp if text is not None else math.nan


def _float(row: dict, column: str, default: float = math.nan) -> float:
    value = _value(row, column)
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def sampling_rate_of(row: dict, data_format: dict) -> float:
    """Hz, from ``trace_sampling_rate_hz``, ``trace_dt_s`` or ``/data_format/sampling_rate``; NaN if none."""
    rate = _float(row, "trace_sampling_rate_hz")
    if not math.isfinite(rate) and math.isfinite(_float(row, "trace_dt_s")):
        rate = 1.0 / _float(row, "trace_dt_s")
    if not math.isfinite(rate) and "sampling_rate" in data_format:
        rate = float(data_format["sampling_rate"])
    return rate


def band_of(row: dict, rate: float) -> str:
    """SEED band + instrument code: ``trace_channel`` (``HH`` or ``HHZ``), else from the
    rate (SEED: ``H`` from 80 Hz, else ``B``; instrument ``H``, high-gain seismometer)."""
    channel = str(_value(row, "trace_channel", ""))
    return channel[:2] if len(channel) >= 2 else ("HH" if rate >= 80 else "BH")


def event_of_row(row: dict, region: str, rate: float, key: str, scheme: LabelScheme = DEFAULT_SCHEME) -> EventInfo:
    """The :class:`EventInfo` of a row's event, labelled by ``scheme``, with the row's P
    pick (``key``: ``NET.STA.LOC``) when it has one."""
    picks = {}
    start = _time(row["trace_start_time"])
    sample = next((_float(row, c) for c in P_SAMPLE_COLUMNS if math.isfinite(_float(row, c))), math.nan)
    if math.isfinite(sample):
        picks[key] = {"P": start + sample / rate}
    event_type = str(_value(row, "source_type", "")).strip()
    label = source_label(event_type, scheme)
    origin = _value(row, "source_origin_time")
    return EventInfo(
        event_id=event_id_of(row), region=region, event_type=event_type, label=label,
        origin_time=_time(origin), latitude=_float(row, "source_latitude_deg"),
        longitude=_float(row, "source_longitude_deg"), depth_km=_float(row, "source_depth_km", 0.0),
        magnitude=_float(row, "source_magnitude"), picks=picks)


def station_of_row(row: dict, band: str, order: str, rate: float, data_format: dict) -> StationInfo:
    """A :class:`StationInfo` from the ``station_*`` columns, one channel per component;
    its response is a unit sensitivity when the dataset is in m/s, else none."""
    velocity = str(data_format.get("unit", "")).strip().upper() in _VELOCITY_UNITS
    channels = tuple(
        ChannelInfo(code=band + c, location=str(_value(row, "station_location_code", "")),
                    azimuth=_ORIENTATION.get(c, (math.nan, math.nan))[0], dip=_ORIENTATION.get(c, (math.nan, math.nan))[1],
                    sampling_rate=rate, start=-math.inf, end=math.inf,
                    response_kind="sensitivity" if velocity else "none", sensitivity=1.0 if velocity else None)
        for c in order)
    return StationInfo(str(_value(row, "station_network_code", "")), str(row["station_code"]),
                       _float(row, "station_latitude_deg"), _float(row, "station_longitude_deg"),
                       _float(row, "station_elevation_m", 0.0), channels)


def stream_of_row(h5, row: dict, data_format: dict, rate: float) -> obspy.Stream:
    """The traces of one metadata row (one per component of ``trace_component_order``,
    channel ``{band}{component}``) from an open waveform file. Raises ``ValueError``
    saying why the row's trace cannot be read."""
    name = str(row["trace_name"])
    try:
        data = read_trace(h5, name, str(data_format["dimension_order"]))
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"trace {name!r}: {type(exc).__name__}: {exc}") from None
    order = str(_value(row, "trace_component_order") or data_format.get("component_order", ""))
    if len(order) != data.shape[0]:
        raise ValueError(f"component order {order!r} for {data.shape[0]} component(s)")
    band = band_of(row, rate)
    header = {"network": str(_value(row, "station_network_code", "")), "station": str(row["station_code"]),
              "location": str(_value(row, "station_location_code", "")), "sampling_rate": rate,
              "starttime": obspy.UTCDateTime(str(row["trace_start_time"]))}  # not via a float: keep its microseconds
    return obspy.Stream([obspy.Trace(np.asarray(data[i]), header={**header, "channel": band + c})
                         for i, c in enumerate(order)])


def recordings_of_rows(h5, uri: str, rows: list[dict], region: str, config: PreprocessConfig,
                       stations: dict[str, StationInfo] | None = None, scheme: LabelScheme = DEFAULT_SCHEME
                       ) -> tuple[list[Recording], list[Reject]]:
    """Cut the recordings of ``rows`` (metadata rows) from an open waveform file; never
    raises for bad data: every row that cannot be used gives a named reject."""
    data_format = read_data_format(h5)
    recordings: list[Recording] = []
    rejects: list[Reject] = []
    for row in rows:
        name = str(row["trace_name"])
        source = f"{uri}:{name}"
        net, sta = str(_value(row, "station_network_code", "")), str(row["station_code"])
        location = str(_value(row, "station_location_code", ""))
        key = f"{net}.{sta}"

        def reject(reason: str, detail: str) -> None:
            rejects.append(Reject(region, event_id_of(row), f"{key}.{location}", reason, detail, source))

        rate = sampling_rate_of(row, data_format)
        if not (math.isfinite(rate) and rate > 0):
            reject("unreadable_waveform_file", "no sampling rate (trace_sampling_rate_hz, trace_dt_s or data_format)")
            continue
        try:
            event = event_of_row(row, region, rate, f"{key}.{location}", scheme)
        except Exception as exc:  # UTCDateTime raises several types
            reject("bad_catalog_entry", f"unreadable time: {type(exc).__name__}: {exc}")
            continue
        if event.label is None:
            reject("unknown_event_type", f"source_type {event.event_type!r} is not in label scheme {scheme.name!r}")
            continue
        try:
            stream = stream_of_row(h5, row, data_format, rate)
        except ValueError as exc:
            reject("unreadable_waveform_file", str(exc))
            continue
        band, order = stream[0].stats.channel[:2], "".join(t.stats.channel[-1] for t in stream)
        station = (stations or {}).get(key) or station_of_row(row, band, order, rate, data_format)
        found, rejected = cut_recordings_from_stream(stream, event, {key: station}, config, source=source)
        recordings += found
        rejects += rejected
    return recordings, rejects


def _dataset_splits(rows: list[dict], mode: str, split_config: SplitConfig, scheme: LabelScheme) -> dict[str, str]:
    """Event id -> split: raydisc's event-wise split, with the dataset's ``split``
    (``dev`` = validation) where it has one and ``mode == "dataset"``."""
    labels = {}
    for row in rows:
        label = source_label(str(_value(row, "source_type", "")), scheme)
        if label is not None:
            labels[event_id_of(row)] = label
    splits = assign_splits(labels.items(), split_config)
    if mode == "dataset":
        for row in rows:
            given = SPLIT_NAMES.get(str(_value(row, "split", "")).strip().lower())
            if given and event_id_of(row) in splits:
                splits[event_id_of(row)] = given
    return splits


def region_of(root: str, config: SeisBenchConfig) -> str:
    """The region name of a dataset: ``config.region``, else its folder's name."""
    return config.region or posixpath.basename(root.rstrip("/")) or "seisbench"


def read_rows(root: str, config: SeisBenchConfig) -> list[tuple[str, list[dict]]]:
    """``[(chunk, metadata rows)]`` of the chunks to read (the columns raydisc uses;
    missing values as None). Raises :class:`IngestError` naming the metadata file and
    the required columns it lacks."""
    tables = []
    for chunk in list(config.chunks) or list_chunks(root):
        table = read_metadata(root, chunk)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise IngestError(f"{root}: metadata{chunk}.csv has no column(s) {missing} (required: "
                              f"{list(REQUIRED_COLUMNS)})")
        columns = [c for c in _COLUMNS if c in table.columns]
        tables.append((chunk, table[columns].astype(object).where(table[columns].notna(), None).to_dict("records")))
    return tables


def plan_seisbench(root: str, output: str, config: SeisBenchConfig, split_config: SplitConfig,
                   scheme: LabelScheme = DEFAULT_SCHEME) -> list[SeisBenchTask]:
    """Read the metadata tables and cut them into shard tasks. Raises
    :class:`IngestError` naming the metadata file and the columns it lacks."""
    region = region_of(root, config)
    stations = read_stations(config.inventory) if config.inventory else None
    tables = read_rows(root, config)
    splits = _dataset_splits([r for _, rows in tables for r in rows], config.split, split_config, scheme)
    tasks, index = [], 0
    for chunk, rows in tables:
        for start in range(0, len(rows), config.traces_per_task):
            part = tuple(rows[start : start + config.traces_per_task])
            part_splits = {event_id_of(r): splits.get(event_id_of(r), "") for r in part}
            tasks.append(SeisBenchTask(root, chunk, output, region, index, part, part_splits, stations, scheme))
            index += 1
    return tasks


def process_seisbench_task(task: SeisBenchTask, config: PreprocessConfig) -> dict:
    """Build one shard from a task's rows; returns its summary row."""
    uri = waveforms_uri(task.root, task.chunk)
    try:
        with open_waveforms(uri) as h5:
            recordings, rejects = recordings_of_rows(h5, uri, list(task.rows), task.region, config, task.stations,
                                                     task.scheme)
    except IngestError as exc:  # the chunk's file is missing or corrupt: every row is lost, with why
        recordings = []
        rejects = [Reject(task.region, event_id_of(r), "*", "unreadable_waveform_file", str(exc), uri) for r in task.rows]
    recordings, inputs, failed = preprocess_isolating(recordings, config, uri)
    rejects += failed
    write_shard(task.output, task.region, task.index, recordings, inputs, rejects, task.splits, config)
    return {"region": task.region, "shard": task.index, "events": len(task.splits), "recordings": len(recordings),
            "rejects": len(rejects), "error": ""}


def seisbench_shard(row: dict, config: PreprocessConfig) -> dict:
    """Ray Data row function of :func:`process_seisbench_task` (errors as in
    :func:`raydisc.data.pipeline.preprocess_shard`)."""
    task = pickle.loads(row["task"])
    try:
        return process_seisbench_task(task, config)
    except Exception as exc:
        log.exception("shard %s/%05d failed", task.region, task.index)
        return {"region": task.region, "shard": task.index, "events": len(task.splits), "recordings": 0,
                "rejects": 0, "error": cap(f"{type(exc).__name__}: {exc}")}


def run_seisbench_preprocessing(
    root: str, output: str, config: SeisBenchConfig = SeisBenchConfig(),
    preprocess_config: PreprocessConfig = PreprocessConfig(), split_config: SplitConfig = SplitConfig(),
    pipeline_config: PipelineConfig = PipelineConfig(), progress: Callable[[dict, int], None] | None = None,
    label_scheme: LabelScheme = DEFAULT_SCHEME,
) -> dict:
    """Preprocess a SeisBench dataset into a shard folder labelled by ``label_scheme`` (as
    :func:`raydisc.data.pipeline.run_preprocessing` does an archive); needs a running Ray."""
    claim_label_scheme(output, label_scheme)
    claim_dataset(output, DatasetInfo(SCHEMA_VERSION, preprocess_config, split_config, root))
    tasks = plan_seisbench(root, output, config, split_config, label_scheme)
    todo = [t for t in tasks if not exists(shard_uri(output, t.region, t.index))]
    run_shard_tasks(todo, seisbench_shard, preprocess_config, pipeline_config, progress)
    summary = summarize(output)
    summary.update(shards_written=len(todo), shards_skipped=len(tasks) - len(todo))
    return summary


__all__ = ["P_SAMPLE_COLUMNS", "REQUIRED_COLUMNS", "SeisBenchConfig", "SeisBenchTask", "event_of_row", "plan_seisbench",
           "process_seisbench_task", "read_rows", "recordings_of_rows", "region_of", "source_label", "stream_of_row", "run_seisbench_preprocessing", "station_of_row"]
