"""Property-based fuzzing of the readers of untrusted input (Hypothesis).

Every reader that takes bytes a client or a data provider controls -- miniSEED, QuakeML,
StationXML, the JSON arrays form -- must answer random and damaged input with either a
well-formed result or the project's own error (``IngestError`` in the data layer,
``InputError`` in the serving layer, a pydantic ``ValidationError`` where a request
model is built), never with whatever numpy, struct, lxml or ObsPy raise inside, and
within a bounded time. The damaged inputs start from real files (ObsPy's example
stream, catalog and inventory, and the project's synthetic archive) and are truncated,
bit-flipped, spliced, given bad header fields or bad XML values by Hypothesis.

Runs are reproducible (``derandomize=True``, no example database) and small enough for
a loaded CI machine.
"""
from __future__ import annotations

import datetime as dt
import io
import math
import os
import time
import uuid
import warnings

import numpy as np
import obspy
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError

from raydisc.config import PreprocessConfig
from raydisc.data.ingest import (REJECT_REASONS, ChannelInfo, EventInfo, IngestError, Recording, Reject, StationInfo,
                                 cut_recordings_from_stream, read_catalog, read_mseed_bytes, read_stations)
from raydisc.features import cut_window_samples
from raydisc.serving.inputs import (InputError, model_inputs, read_mseed, recordings_from_arrays,
                                    recordings_from_mseed, stations_from_stationxml)
from raydisc.serving.schemas import ArraysRequest, MseedMetadata

#: Seconds one reader call may take on one input (a loaded 2-core machine); far above
#: what any of them needs, far below a hang.
MAX_SECONDS = 10.0

#: Examples per test; ``RAYDISC_FUZZ_EXAMPLES=2000`` (and ``RAYDISC_FUZZ_RANDOM=1`` for
#: fresh random inputs instead of the fixed derandomized ones) fuzzes deeper by hand.
EXAMPLES = int(os.environ.get("RAYDISC_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=dt.timedelta(seconds=8),
                derandomize=not os.environ.get("RAYDISC_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

CONFIG = PreprocessConfig()

# Damaged input makes ObsPy and numpy warn (odd record headers, overflow in the
# preprocessing of extreme values); the assertions below are what counts.
pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.timeout(300)]


def timed(fn, *args):
    """``fn(*args)`` and the seconds it took; asserts the bound on the way out, also when
    it raised (a slow error is as bad as a slow result)."""
    start = time.perf_counter()
    try:
        return fn(*args)
    finally:
        elapsed = time.perf_counter() - start
        assert elapsed < MAX_SECONDS, f"{getattr(fn, '__name__', fn)} took {elapsed:.1f} s on one input"


# --------------------------------------------------------------------------- byte mutations

#: (offset, width) of fields of a miniSEED 2 record header: sequence number, quality,
#: station, location, channel, network, start time (BTIME), number of samples, sample
#: rate factor and multiplier, flags, number of blockettes, time correction, begin of
#: data, first blockette; blockette 1000's type, next, encoding, word order and record
#: length exponent (it follows the 48-byte fixed header in ObsPy's files).
MSEED_FIELDS = [(0, 6), (6, 1), (8, 5), (13, 2), (15, 3), (18, 2), (20, 10), (30, 2), (32, 2), (34, 2),
                (36, 3), (39, 1), (40, 4), (44, 2), (46, 2), (48, 2), (50, 2), (52, 1), (53, 1), (54, 1)]
#: Values a header field is overwritten with besides random bytes: zeros, all ones,
#: the sign bit, and small/large record length exponents and encodings.
SPECIAL_FIELD_BYTES = [b"\x00", b"\xff", b"\x80", b"\x7f", b"\x01", b"\x07", b"\x08", b"\x0c", b"\x1f", b"\x0a", b"\x0b"]


@st.composite
def mutated_bytes(draw, base: bytes, unit: int = 1, header_fields: list | None = None,
                  record_length: int = 512) -> bytes:
    """``base`` after 1-4 mutations: truncation (anywhere, or at a multiple of ``unit``
    so that length checks pass), byte flips, a slice deleted, duplicated or spliced in
    elsewhere (lengths multiples of ``unit``), and -- when ``header_fields`` is given --
    a header field of one record (``record_length`` apart) overwritten, or bytes of one
    record's data (after its headers) flipped."""
    data = bytearray(base)
    kinds = ["truncate", "truncate_aligned", "flip", "delete", "duplicate", "splice"]
    if header_fields:
        kinds += ["header", "header", "flip_payload", "flip_payload"]
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        n = len(data)
        if kind == "truncate":
            data = data[: draw(st.integers(0, n))]
        elif kind == "truncate_aligned":
            data = data[: unit * draw(st.integers(0, n // unit))]
        elif kind == "flip" and n:
            for _ in range(draw(st.integers(1, 16))):
                i = draw(st.integers(0, n - 1))
                data[i] ^= draw(st.integers(1, 255))
        elif kind == "flip_payload" and n >= record_length:
            # Damage the encoded samples of one record but none of its headers.
            record = draw(st.integers(0, n // record_length - 1)) * record_length
            for _ in range(draw(st.integers(1, 8))):
                i = record + draw(st.integers(64, record_length - 1))
                data[i] ^= draw(st.integers(1, 255))
        elif kind in ("delete", "duplicate", "splice") and n >= unit:
            a = unit * draw(st.integers(0, n // unit - 1))
            b = min(n, a + unit * draw(st.integers(1, max(1, (n - a) // unit))))
            piece = bytes(data[a:b])
            if kind == "delete":
                del data[a:b]
            elif kind == "duplicate":
                data[b:b] = piece * draw(st.integers(1, 3))
            else:
                at = unit * draw(st.integers(0, n // unit))
                data[at:at] = piece
        elif kind == "header" and n >= 64:
            record = draw(st.integers(0, max(0, n // record_length - 1))) * record_length
            offset, width = draw(st.sampled_from(header_fields))
            value = draw(st.one_of(st.binary(min_size=width, max_size=width),
                                   st.sampled_from(SPECIAL_FIELD_BYTES).map(lambda b: (b * width)[:width])))
            start = record + offset
            data[start : start + width] = value[: max(0, n - start)]
    return bytes(data)


# --------------------------------------------------------------------------- miniSEED

STATION_START = obspy.UTCDateTime(2021, 5, 4, 3, 2, 1)
#: The P pick of the generated recording: 30 s after its start, so the default window
#: (-10..80 s around P, 5 s padding) lies inside its 130 s.
P_PICK = STATION_START + 30.0


def _encoded(stream: obspy.Stream, encoding: str, reclen: int) -> bytes:
    stream = stream.copy()
    for trace in stream:
        trace.data = trace.data.astype(np.float64 if encoding.startswith("FLOAT") else np.int32)
        if encoding == "FLOAT32":
            trace.data = trace.data.astype(np.float32)
    buf = io.BytesIO()
    stream.write(buf, format="MSEED", encoding=encoding, reclen=reclen)
    return buf.getvalue()


def _station_stream() -> obspy.Stream:
    """130 s of 3-component 40 Hz noise of station XX.FUZ (channels HHZ/HHN/HHE)."""
    rng = np.random.default_rng(11)
    return obspy.Stream([obspy.Trace((rng.normal(0, 2000, 130 * 40)).astype(np.int32),
                                     {"network": "XX", "station": "FUZ", "channel": f"HH{c}",
                                      "sampling_rate": 40.0, "starttime": STATION_START})
                         for c in "ZNE"])


def _mseed_bases() -> list[tuple[str, bytes, int]]:
    """(name, bytes, record length) of real miniSEED files: ObsPy's example stream and
    a recording that metadata below can cut, in several encodings and record lengths."""
    example, station = obspy.read(), _station_stream()
    bases = []
    for stream_name, stream in (("example", example), ("station", station)):
        for encoding, reclen in (("STEIM1", 512), ("STEIM2", 4096), ("STEIM2", 512), ("FLOAT64", 512),
                                 ("INT32", 4096), ("FLOAT32", 512)):
            bases.append((f"{stream_name}-{encoding}-{reclen}", _encoded(stream, encoding, reclen), reclen))
    return bases


MSEED_BASES = _mseed_bases()


@st.composite
def mseed_inputs(draw) -> bytes:
    """Random bytes, or a real miniSEED file damaged by Hypothesis."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=4096))
    # The generated station's files (which metadata can cut) twice as often.
    _, base, reclen = draw(st.sampled_from(MSEED_BASES + [b for b in MSEED_BASES if b[0].startswith("station")]))
    return draw(mutated_bytes(base, unit=128, header_fields=MSEED_FIELDS, record_length=reclen))


def test_mseed_bases_are_read_unchanged():
    """The undamaged files are read back: the fuzzing starts from real, valid data."""
    for name, data, _ in MSEED_BASES:
        stream = read_mseed(data, name)
        assert len(stream) == 3, name
        assert sum(tr.stats.npts for tr in stream) in (9000, 3 * 130 * 40), name


def _check_stream(stream) -> None:
    assert isinstance(stream, obspy.Stream)
    for trace in stream:
        assert isinstance(trace.data, np.ndarray) and trace.data.ndim == 1
        assert trace.stats.npts == len(trace.data)


@FUZZ
@given(data=mseed_inputs())
def test_read_mseed_gives_a_stream_or_input_error(data):
    try:
        stream = timed(read_mseed, data)
    except InputError as exc:
        event("InputError")
        assert str(exc).startswith("uploaded miniSEED: "), str(exc)
        assert exc.status == 422
        return
    event(f"stream of {len(stream)} traces")
    _check_stream(stream)


@FUZZ
@given(data=mseed_inputs())
def test_read_mseed_bytes_gives_a_stream_or_ingest_error(data):
    try:
        stream = timed(read_mseed_bytes, data, "fuzz.mseed")
    except IngestError as exc:
        assert str(exc).startswith("fuzz.mseed: "), str(exc)
        return
    _check_stream(stream)


METADATA = MseedMetadata.model_validate({
    "event": {"event_id": "fuzz", "origin_time": (P_PICK - 8.0).isoformat(), "latitude": 47.0, "longitude": 11.0,
              "depth_km": 8.0},
    "stations": [
        {"network": "XX", "station": "FUZ", "latitude": 47.2, "longitude": 11.3,
         "channels": {"Z": "HHZ", "N": "HHN", "E": "HHE"}, "sampling_rate_hz": 40.0,
         "sensitivity": {"Z": 6e8, "N": 6e8, "E": 6e8}, "p_time": P_PICK.isoformat()},
        # The example stream's station (30 s of data: too short for the window).
        {"network": "BW", "station": "RJOB", "latitude": 47.7, "longitude": 12.8,
         "channels": {"Z": "EHZ", "N": "EHN", "E": "EHE"}, "sampling_rate_hz": 100.0,
         "sensitivity": {"Z": 2.5e9, "N": 2.5e9, "E": 2.5e9}},
    ],
})


def check_recordings(recordings, rejects, config: PreprocessConfig) -> None:
    """Well-formed results of a cut: finite (3, n) counts of the window length at a
    usable rate with the vertical present, and rejects with a known reason, a station
    and a detail."""
    assert isinstance(recordings, list) and isinstance(rejects, list)
    for rec in recordings:
        assert isinstance(rec, Recording)
        assert rec.sampling_rate >= config.min_sampling_rate_hz
        assert rec.counts.shape == (3, cut_window_samples(rec.sampling_rate, config)), rec.key
        assert np.isfinite(rec.counts).all(), rec.key
        assert np.abs(rec.counts).max(initial=0.0) < config.clip_fraction * config.clip_counts * 2, rec.key
        assert rec.present[0] and rec.present.dtype == bool
        assert np.isfinite(rec.sensitivity).all() and (rec.sensitivity != 0).all()
    for rej in rejects:
        assert isinstance(rej, Reject)
        assert rej.reason in REJECT_REASONS
        assert rej.detail.strip(), rej
        assert rej.station and rej.station.count(".") == 2, rej


def check_model_inputs(recordings, config: PreprocessConfig) -> dict[str, np.ndarray]:
    """Both input kinds of the recordings: float32 arrays of the documented shapes."""
    out = {}
    for kind, shape in (("spectrogram", config.spectrogram_shape), ("waveform", config.waveform_shape)):
        x = timed(model_inputs, recordings, config, kind)
        assert x.dtype == np.float32 and x.shape == (len(recordings), *shape), (kind, x.shape)
        out[kind] = x
    return out


@FUZZ
@given(data=mseed_inputs())
def test_recordings_from_mseed_give_recordings_and_rejects_or_input_error(data):
    try:
        recordings, rejects = timed(recordings_from_mseed, data, METADATA, CONFIG)
    except InputError as exc:
        event("InputError")
        assert str(exc).strip() and exc.status == 422
        return
    event(f"{len(recordings)} recording(s)")
    for rej in rejects:
        event(f"reject {rej.reason}")
    check_recordings(recordings, rejects, CONFIG)
    # Finite counts below full scale and the metadata's sane sensitivities must give
    # finite model inputs.
    for kind, x in check_model_inputs(recordings, CONFIG).items():
        assert np.isfinite(x).all(), kind
        if kind == "waveform":
            assert np.abs(x).max(initial=0.0) <= 1.0


def test_recordings_from_mseed_cut_the_undamaged_station():
    """Without damage the generated station gives one 3-component recording (so the
    fuzzed inputs do reach the cutting and the preprocessing)."""
    data = next(b for name, b, _ in MSEED_BASES if name.startswith("station-STEIM2"))
    recordings, rejects = recordings_from_mseed(data, METADATA, CONFIG)
    assert [r.key for r in recordings] == ["XX.FUZ."]
    assert recordings[0].components == "ZNE"
    assert [r.reason for r in rejects] == ["not_recorded"]
    check_recordings(recordings, rejects, CONFIG)


# --------------------------------------------------------------------------- XML mutations

#: Replacement texts for numeric and time fields: wrong types, empty, huge, not finite.
BAD_VALUES = ["", " ", "abc", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e308",
              "-1e308", "9" * 400, "0", "-0", "-1", "1e-320", "0x10", "1,5", "2012-13-45T99:99:99",
              "9999999-01-01T00:00:00", "-0001-01-01", "true", "None", "null"]


#: Text that XML can hold (no control characters, surrogates or U+FFFE/U+FFFF).
XML_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFFFD, exclude_categories=("Cs",)), max_size=30)


@st.composite
def mutated_xml(draw, base: bytes, targets: tuple[str, ...]) -> bytes:
    """``base`` XML with 1-4 structural mutations (a random element or attribute
    deleted, an element's text or an attribute replaced by a bad value, an element
    duplicated), preferring elements named in ``targets``; then, sometimes, byte-level
    damage on top."""
    root = etree.fromstring(base)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    targeted = [e for e in elements if etree.QName(e).localname in targets]
    value = st.one_of(st.sampled_from(BAD_VALUES), XML_TEXT)
    for kind in draw(st.lists(st.sampled_from(["delete", "text", "text_target", "text_target", "attribute",
                                               "delete_attribute", "duplicate", "delete_target"]),
                              min_size=1, max_size=4)):
        pool = targeted if kind.endswith("_target") and targeted else elements
        element = pool[draw(st.integers(0, len(pool) - 1))]
        parent = element.getparent()
        if kind.startswith("delete") and kind != "delete_attribute":
            if parent is not None:
                parent.remove(element)
                elements = [e for e in root.iter() if isinstance(e.tag, str)]
                targeted = [e for e in elements if etree.QName(e).localname in targets]
        elif kind.startswith("text"):
            element.text = draw(value)
        elif kind == "attribute" and element.attrib:
            name = draw(st.sampled_from(sorted(element.attrib)))
            element.set(name, draw(value))
        elif kind == "delete_attribute" and element.attrib:
            del element.attrib[draw(st.sampled_from(sorted(element.attrib)))]
        elif kind == "duplicate" and parent is not None:
            parent.insert(parent.index(element), etree.fromstring(etree.tostring(element)))
            elements = [e for e in root.iter() if isinstance(e.tag, str)]
            targeted = [e for e in elements if etree.QName(e).localname in targets]
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if draw(st.integers(0, 3)) == 0:
        data = draw(mutated_bytes(data))
    return data


#: Tokens of random XML-ish text (tags of both formats, values, declarations, entities).
XML_TOKENS = ["<?xml version='1.0' encoding='UTF-8'?>", "<q:quakeml xmlns:q='http://quakeml.org/xmlns/quakeml/1.2' "
              "xmlns='http://quakeml.org/xmlns/bed/1.2'>", "</q:quakeml>", "<eventParameters>", "</eventParameters>",
              "<event publicID='smi:x/e1'>", "</event>", "<origin publicID='o'>", "</origin>", "<time>", "</time>",
              "<value>", "</value>", "<latitude>", "</latitude>", "<type>", "</type>", "earthquake", "quarry blast",
              "<pick>", "</pick>", "<waveformID networkCode='XX' stationCode='A'/>", "<phaseHint>P</phaseHint>",
              "<FDSNStationXML xmlns='http://www.fdsn.org/xml/station/1' schemaVersion='1.1'>", "</FDSNStationXML>",
              "<Source>x</Source>", "<Created>2020-01-01T00:00:00</Created>", "<Network code='XX'>", "</Network>",
              "<Station code='A'>", "</Station>", "<Channel code='HHZ' locationCode=''>", "</Channel>",
              "<SampleRate>", "</SampleRate>", "<Latitude>", "</Latitude>", "<Response>", "</Response>",
              "<InstrumentSensitivity><Value>", "</Value></InstrumentSensitivity>", "2020-01-01T00:00:00",
              "1.5", "nan", "-1e999", "&amp;", "&lt;", "&#0;", "&#x1F;", "<![CDATA[x]]>", "<!-- c -->",
              "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>", "&a;", "\x00", "\xff", " ", "\n", "<", ">", "/", "'", '"', "="]
xml_ish = st.lists(st.sampled_from(XML_TOKENS), max_size=60).map(lambda t: "".join(t).encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------- QuakeML


@pytest.fixture(scope="module")
def xml_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-xml")


@pytest.fixture(scope="module")
def synthetic_region(tmp_path_factory):
    """A tiny synthetic region (3 events): its catalog and inventory, once per module."""
    from raydisc.synthetic import generate_archive

    root = tmp_path_factory.mktemp("fuzz-archive")
    generate_archive(str(root), regions="alpine", events_per_region=3, seed=5)
    return {"catalog": (root / "alpine" / "catalog.xml").read_bytes(),
            "inventory": (root / "alpine" / "inventory.xml").read_bytes()}


def _example_catalog() -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obspy.read_events().write(buf, format="QUAKEML")
    return buf.getvalue()


QUAKEML_TARGETS = ("value", "time", "latitude", "longitude", "depth", "mag", "type", "pick", "origin",
                   "magnitude", "preferredOriginID", "preferredMagnitudeID", "phaseHint", "waveformID", "event")


def write_input(directory, data: bytes, suffix: str) -> str:
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    return str(path)


STATION_STREAM = _station_stream()
#: The generated station XX.FUZ as an inventory record (sensitivities only).
FUZ_STATIONS = {"XX.FUZ": StationInfo("XX", "FUZ", 47.2, 11.3, 600.0, tuple(
    ChannelInfo(f"HH{c}", "", az, dip, 40.0, -math.inf, math.inf, "sensitivity", 6e8)
    for c, az, dip in (("Z", 0.0, -90.0), ("N", 0.0, 0.0), ("E", 90.0, 0.0))))}


def check_events(events) -> None:
    assert isinstance(events, list)
    for info in events:
        assert isinstance(info, EventInfo)
        assert math.isfinite(info.origin_time) and math.isfinite(info.longitude)
        assert -90.0 <= info.latitude <= 90.0
        assert math.isfinite(info.depth_km)
        for key, phases in info.picks.items():
            assert key.count(".") == 2 and set(phases) <= {"P", "S"}
            assert all(math.isfinite(t) for t in phases.values())


@FUZZ
@given(data=st.data())
def test_read_catalog_gives_events_or_ingest_error(data, xml_dir, synthetic_region):
    source = data.draw(st.sampled_from(["example", "synthetic", "xmlish", "random"]))
    if source == "xmlish":
        content = data.draw(xml_ish)
    elif source == "random":
        content = data.draw(st.binary(max_size=2048))
    else:
        base = _example_catalog() if source == "example" else synthetic_region["catalog"]
        content = data.draw(mutated_xml(base, QUAKEML_TARGETS))
    path = write_input(xml_dir, content, ".xml")
    try:
        events = timed(read_catalog, path, "fuzz")
    except IngestError as exc:
        event(f"{source}: IngestError")
        assert str(exc).startswith(path), str(exc)
        return
    event(f"{source}: {min(len(events), 3)}+ events")
    check_events(events)
    # What the catalog reader accepts, the cutter takes without raising: distances and
    # predicted P arrivals from whatever origin, depth and picks the file gave.
    for info in events[:3]:
        recordings, rejects = timed(cut_recordings_from_stream, STATION_STREAM, info, FUZ_STATIONS, CONFIG)
        check_recordings(recordings, rejects, CONFIG)


def test_catalog_bases_are_read(tmp_path, synthetic_region):
    """The undamaged catalogs are read: the fuzzing starts from real, valid files."""
    assert len(read_catalog(write_input(tmp_path, _example_catalog(), ".xml"), "fuzz")) == 3
    events = read_catalog(write_input(tmp_path, synthetic_region["catalog"], ".xml"), "fuzz")
    assert len(events) == 3 and all(e.picks for e in events)


# --------------------------------------------------------------------------- StationXML


def _example_inventory() -> bytes:
    buf = io.BytesIO()
    obspy.read_inventory().write(buf, format="STATIONXML")
    return buf.getvalue()


EXAMPLE_INVENTORY = _example_inventory()
STATIONXML_TARGETS = ("SampleRate", "Value", "InstrumentSensitivity", "Sensitivity", "Frequency", "Latitude",
                      "Longitude", "Elevation", "Depth", "Azimuth", "Dip", "Response", "Stage", "PolesZeros",
                      "Pole", "Zero", "Real", "Imaginary", "NormalizationFactor", "NormalizationFrequency",
                      "InputUnits", "Name", "Channel", "Station", "Network", "StageGain", "Decimation",
                      "InputSampleRate", "Factor", "SampleRateRatio", "NumberOfSamples", "Coefficients")


def _sensitivity_edits(base: bytes, value: str | None, field: str) -> bytes:
    """``base`` with every channel's overall sensitivity value (``field`` "Value") or
    sample rate ("SampleRate") set to ``value``, or removed (None)."""
    root = etree.fromstring(base)
    ns = root.tag[: root.tag.index("}") + 1]
    if field == "SampleRate":
        found = list(root.iter(f"{ns}SampleRate"))
    else:
        found = [s.find(f"{ns}Value") for s in root.iter(f"{ns}InstrumentSensitivity")]
        found = [e for e in found if e is not None]
        if value is None:
            found = list(root.iter(f"{ns}InstrumentSensitivity"))
    for element in found:
        if value is None:
            element.getparent().remove(element)
        else:
            element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@st.composite
def stationxml_inputs(draw, synthetic_inventory: bytes) -> bytes:
    source = draw(st.sampled_from(["example", "synthetic", "edit", "xmlish", "random"]))
    if source == "xmlish":
        return draw(xml_ish)
    if source == "random":
        return draw(st.binary(max_size=2048))
    base = draw(st.sampled_from([EXAMPLE_INVENTORY, synthetic_inventory]))
    if source == "edit":
        field = draw(st.sampled_from(["Value", "SampleRate"]))
        base = _sensitivity_edits(base, draw(st.sampled_from(["0", "-1", "-6e8", "nan", "NaN", "inf", "", None])),
                                  field)
        if draw(st.booleans()):
            return base
    return draw(mutated_xml(base, STATIONXML_TARGETS))


def check_stations(stations) -> None:
    assert isinstance(stations, dict)
    for key, station in stations.items():
        assert isinstance(station, StationInfo) and key == station.key
        for ch in station.channels:
            assert ch.response_kind in ("full", "sensitivity", "none")
            if ch.sensitivity is not None:
                assert math.isfinite(ch.sensitivity) and ch.sensitivity != 0, (key, ch.code)
            if ch.response_kind == "sensitivity":
                assert ch.sensitivity is not None, (key, ch.code)
            assert isinstance(ch.sampling_rate, float)


@FUZZ
@given(data=st.data())
def test_stations_from_stationxml_give_stations_or_input_error(data, synthetic_region):
    content = data.draw(stationxml_inputs(synthetic_region["inventory"]))
    try:
        stations = timed(stations_from_stationxml, content)
    except InputError as exc:
        event("InputError")
        assert str(exc).startswith("uploaded StationXML: "), str(exc)
        assert "memory://" not in str(exc)
        return
    event(f"{min(len(stations), 3)}+ stations")
    check_stations(stations)


@FUZZ
@given(data=st.data())
def test_read_stations_gives_stations_or_ingest_error(data, xml_dir, synthetic_region):
    content = data.draw(stationxml_inputs(synthetic_region["inventory"]))
    path = write_input(xml_dir, content, ".xml")
    try:
        stations = timed(read_stations, path)
    except IngestError as exc:
        event("IngestError")
        assert str(exc).startswith(path), str(exc)
        return
    event(f"{min(len(stations), 3)}+ stations")
    check_stations(stations)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "", None])
def test_bad_sensitivities_leave_channels_without_one(value):
    """Sensitivity 0 / NaN / missing: the channels keep no sensitivity (a negative one is
    a polarity and stays); the example's full responses keep them ``full``."""
    stations = stations_from_stationxml(_sensitivity_edits(EXAMPLE_INVENTORY, value, "Value"))
    check_stations(stations)
    assert stations["BW.RJOB"].channels


# --------------------------------------------------------------------------- JSON arrays

#: Sample values: ordinary, zero, huge, tiny, not finite.
SAMPLES = st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.just(0.0),
                    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e30, 5e-324, 2.0**23]))
#: Rates from far too low to the schema's maximum, and the usable ones around 40 Hz.
RATES = st.one_of(st.sampled_from([0.001, 0.5, 1.0, 37.0, 37.9, 38.0, 40.0, 50.0, 100_000.0]),
                  st.floats(0.001, 100_000.0))
#: Sensitivities the schema takes: ordinary and extreme ones.
SENSITIVITIES = st.one_of(st.floats(1e-3, 1e12), st.sampled_from([1.0, 6e8, 1e-300, 5e-324, 1e300]))
#: Values the schema must refuse as a rate or a sensitivity.
INVALID = st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 100_001.0])


@st.composite
def station_dicts(draw) -> dict:
    """One station of an arrays request. Half are "cuttable": a usable rate, rows that
    cover the window (but may hold NaN/inf/huge/zero samples); the others have random
    shapes, lengths, rates and start times."""
    name = draw(st.text("ABCDEFGHIJ0123456789", min_size=1, max_size=5))
    n_rows = draw(st.sampled_from([1, 3, 3, 2, 4]))
    if draw(st.booleans()):
        fs = draw(st.sampled_from([38.0, 40.0, 50.0]))
        n = cut_window_samples(fs, CONFIG) + draw(st.integers(0, 5))
        start_s = CONFIG.window_start_s - CONFIG.padding_s - draw(st.floats(0.0, 0.1))
        pattern = draw(st.sampled_from(["noise", "zeros", "constant", "spikes"]))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        rows = []
        for _ in range(n_rows):
            if pattern == "noise":
                row = rng.normal(0, draw(st.sampled_from([1.0, 1e3, 1e6])), n)
            elif pattern == "zeros":
                row = np.zeros(n)
            elif pattern == "constant":
                row = np.full(n, draw(st.floats(-1e6, 1e6)))
            else:
                row = rng.normal(0, 100, n)
                for _ in range(draw(st.integers(1, 3))):
                    row[draw(st.integers(0, n - 1))] = draw(SAMPLES)
            rows.append(row.tolist())
        if draw(st.integers(0, 5)) == 0 and rows:  # mismatched lengths
            rows[-1] = rows[-1][: draw(st.integers(0, n))]
    else:
        fs = draw(RATES)
        start_s = draw(st.one_of(st.floats(-200.0, 200.0), st.floats(-1e9, 1e9)))
        length = draw(st.integers(0, 300))
        rows = [draw(st.lists(SAMPLES, min_size=length, max_size=length)) for _ in range(n_rows)]
    if draw(st.integers(0, 7)) == 0:
        fs = draw(INVALID)
    n_sens = n_rows if draw(st.integers(0, 5)) else draw(st.integers(0, 4))
    sensitivity = [draw(SENSITIVITIES) for _ in range(n_sens)]
    if sensitivity and draw(st.integers(0, 7)) == 0:
        sensitivity[draw(st.integers(0, n_sens - 1))] = draw(INVALID)
    return {"network": draw(st.sampled_from(["XX", "YY"])), "station": name, "location": draw(st.sampled_from(["", "00"])),
            "latitude": draw(st.floats(-90, 90)), "longitude": draw(st.floats(-180, 180)),
            "counts": rows, "sampling_rate_hz": fs,
            "sensitivity": sensitivity, "start_s": start_s}


#: Sensitivities in which the preprocessing of samples below the digitizer's full scale
#: stays far from float64 overflow (velocity = counts / sensitivity, then squared).
SANE_SENSITIVITY = (1e-100, 1e300)


@FUZZ
@given(stations=st.lists(station_dicts(), min_size=1, max_size=3, unique_by=lambda s: (s["network"], s["station"])),
       on_reject=st.sampled_from(["fail", "skip"]))
def test_arrays_give_recordings_rejects_and_model_inputs(stations, on_reject):
    try:
        request = ArraysRequest.model_validate({"event": {"event_id": "fuzz"}, "stations": stations,
                                                "on_reject": on_reject})
    except ValidationError:
        event("ValidationError")
        return  # the 422 of the request model
    recordings, rejects = timed(recordings_from_arrays, request, CONFIG)
    event(f"{len(recordings)} recording(s)")
    for rej in rejects:
        event(f"reject {rej.reason}")
    check_recordings(recordings, rejects, CONFIG)
    keys = [s.key for s in request.stations]
    assert {r.key for r in recordings} | {r.station for r in rejects} <= set(keys)
    for s in request.stations:
        # Every station ends up somewhere: a recording or a reject naming it.
        assert s.key in {r.key for r in recordings} | {r.station for r in rejects}, s.key
    # Non-finite samples never reach the model input silently: check_recordings above
    # holds every recording's window finite, so a station with NaN/inf in its window was
    # rejected (as "nan", or for whatever else was wrong first).
    if not recordings:
        return
    try:
        inputs = check_model_inputs(recordings, CONFIG)
    except ValueError as exc:
        assert any(r.key in str(exc) for r in recordings), str(exc)
        return
    by_key = {s.key: s for s in request.stations}
    for i, rec in enumerate(recordings):
        sane = all(SANE_SENSITIVITY[0] <= v <= SANE_SENSITIVITY[1] for v in by_key[rec.key].sensitivity)
        for kind, x in inputs.items():
            if sane:
                assert np.isfinite(x[i]).all(), (rec.key, kind)
            # Extreme sensitivities can overflow to non-finite inputs: the server's
            # _classify makes those preprocessing_error rejects (not asserted here).
        if sane:
            assert np.abs(inputs["waveform"][i]).max() <= 1.0
            if not rec.counts.any():
                # Silence is zero (the spectrogram up to rounding in its standardisation).
                assert not inputs["waveform"][i].any() and np.abs(inputs["spectrogram"][i]).max() < 1e-4


# start_s NaN/inf/huge used to escape obspy.UTCDateTime as TypeError/OverflowError (a 500).
@pytest.mark.parametrize("start_s", [math.nan, math.inf, -1e300, 1e12, 1e18])
def test_arrays_extreme_start_time_is_a_reject_or_validation_error(start_s):
    station = {"network": "XX", "station": "A", "counts": [[0.0] * 10], "sampling_rate_hz": 40.0,
               "sensitivity": [1.0], "start_s": start_s}
    try:
        request = ArraysRequest.model_validate({"stations": [station]})
    except ValidationError:
        return
    try:
        recordings, rejects = recordings_from_arrays(request, CONFIG)
    except InputError:
        return
    assert not recordings and [r.station for r in rejects] == ["XX.A."]


def test_arrays_stations_given_twice_are_refused_by_name():
    # Two entries of one station (differing in location code) would leave one unanswered.
    rng = np.random.default_rng(3)
    n = cut_window_samples(40.0, CONFIG)
    stations = [{"network": "XX", "station": "A", "location": loc, "counts": [rng.normal(0, 100, n).tolist()],
                 "sampling_rate_hz": 40.0, "sensitivity": [1.0], "start_s": -15.0} for loc in ("", "00")]
    with pytest.raises(ValidationError, match="station XX.A is given more than once"):
        ArraysRequest.model_validate({"stations": stations})


# --------------------------------------------------------------------------- regressions of what the fuzzing found


def _cut_fuz(stream: obspy.Stream, **event) -> tuple[list[Recording], list[Reject]]:
    fields = dict(event_id="e", region="r", event_type="earthquake", label=0, origin_time=(P_PICK - 8.0).timestamp,
                  latitude=47.0, longitude=11.0, depth_km=8.0, magnitude=1.0, picks={})
    fields.update(event)
    return cut_recordings_from_stream(stream, EventInfo(**fields), FUZ_STATIONS, CONFIG)


@pytest.mark.parametrize("event,reason", [
    ({"latitude": 47.2 + 1e-15, "longitude": 11.3}, None),   # Vincenty divided by zero
    ({"depth_km": 1e7}, "no_p_pick"),                        # below the planet: ValueError
    ({"depth_km": 6370.0}, "no_p_pick"),                     # TauP's UnboundLocalError
])
def test_cut_survives_odd_origins(event, reason):
    recordings, rejects = _cut_fuz(STATION_STREAM, **event)
    assert [r.reason for r in rejects] == ([reason] if reason else [])
    assert len(recordings) == (0 if reason else 1)


def test_cut_rejects_channels_mixing_rates_or_holding_text():
    """Records of one channel at two rates (ObsPy's merge raised TypeError), of two
    sample types (merged as float64), or of text (numpy's ValueError)."""
    split = STATION_STREAM.copy()
    z = split.select(channel="HHZ")[0]
    a, b = z.copy(), z.copy()
    a.trim(z.stats.starttime, z.stats.starttime + 60 - z.stats.delta)
    b.trim(z.stats.starttime + 60, z.stats.endtime)
    b.data = b.data.astype(np.float64)
    split.remove(z)
    recordings, rejects = _cut_fuz(split + obspy.Stream([a, b]))
    assert [r.key for r in recordings] == ["XX.FUZ."] and not rejects
    b.stats.sampling_rate = 50.0
    recordings, rejects = _cut_fuz(split + obspy.Stream([a, b]))
    assert [r.reason for r in rejects] == ["sampling_rate_mismatch"] and not recordings
    a.data = np.frombuffer(b"x" * a.stats.npts, dtype="S1")
    recordings, rejects = _cut_fuz(split + obspy.Stream([a]))
    assert [r.reason for r in rejects] == ["unreadable_waveform_file"] and not recordings


def test_catalog_latitude_out_of_range_is_an_ingest_error(tmp_path):
    root = etree.fromstring(_example_catalog())
    ns = "{http://quakeml.org/xmlns/bed/1.2}"
    next(root.iter(f"{ns}latitude")).find(f"{ns}value").text = "1000"
    with pytest.raises(IngestError, match=r"origin latitude 1000.0 is not in \[-90, 90\]"):
        read_catalog(write_input(tmp_path, etree.tostring(root), ".xml"), "fuzz")
