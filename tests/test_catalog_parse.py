"""The lxml QuakeML reader of raydisc.data.ingest against ObsPy as the oracle.

Catalogs are written with ObsPy's own object model and writer (or by the synthetic
generator); the EventInfo list the reader gives must equal one computed here from
``obspy.read_events`` of the same file. No Ray.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import obspy
import pytest
from obspy import UTCDateTime
from obspy.core.event import (Catalog, Event, Magnitude, Origin, Pick, ResourceIdentifier,
                              WaveformStreamID)

from raydisc.data import layout
from raydisc.data.ingest import (CatalogEntry, EventInfo, IngestError, index_catalog, parse_catalog_entries,
                                 parse_catalog_entries_isolating, read_catalog)
from raydisc.labels import UnknownLabelError, label_of
from raydisc.synthetic import generate_archive

REGION = "testland"
T0 = UTCDateTime("2021-03-04T05:06:07.123456Z")


# --- the oracle ----------------------------------------------------------------------

def reference_infos(path: Path, region: str = REGION) -> list[EventInfo]:
    """EventInfo records from ObsPy's reading of a QuakeML file, sorted by event id."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy warns about what it reads as missing
        catalog = obspy.read_events(str(path), format="QUAKEML")
    infos = []
    for event in catalog:
        event_id = layout.event_id_from_resource_id(event.resource_id)
        origin = event.preferred_origin() or event.origins[0]
        magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
        event_type = str(event.event_type) if event.event_type is not None else ""
        try:
            label = label_of(event_type)
        except UnknownLabelError:
            label = None
        picks: dict[str, dict[str, float]] = {}
        for pick in event.picks:
            phase = (pick.phase_hint or "").upper()
            if phase in ("P", "S"):
                wid = pick.waveform_id
                key = f"{wid.network_code}.{wid.station_code}.{wid.location_code or ''}"
                picks.setdefault(key, {})[phase] = pick.time.timestamp
        infos.append(EventInfo(
            event_id=event_id, region=region, event_type=event_type, label=label,
            origin_time=origin.time.timestamp, latitude=float(origin.latitude), longitude=float(origin.longitude),
            depth_km=float(origin.depth or 0.0) / 1000.0,
            magnitude=float(magnitude.mag) if magnitude is not None and magnitude.mag is not None else math.nan,
            picks=picks,
        ))
    return sorted(infos, key=lambda e: e.event_id)


def comparable(infos: list[EventInfo]) -> list[dict]:
    """As dicts, NaN magnitudes made comparable."""
    rows = []
    for info in infos:
        row = dataclasses.asdict(info)
        if math.isnan(row["magnitude"]):
            row["magnitude"] = "nan"
        rows.append(row)
    return rows


def assert_matches_obspy(path: Path) -> list[EventInfo]:
    ours = read_catalog(str(path), REGION)
    expected = reference_infos(path)
    assert comparable(ours) == comparable(expected)
    return ours


# --- catalogs written with ObsPy -------------------------------------------------------

def rid(*parts: str) -> ResourceIdentifier:
    return ResourceIdentifier("smi:local/test/" + "/".join(parts))


def origin(name: str, dt: float = 0.0, lat: float = 46.5, lon: float = 8.25, depth: float | None = 4200.0) -> Origin:
    return Origin(resource_id=rid(name), time=T0 + dt, latitude=lat, longitude=lon, depth=depth)


def magnitude(name: str, mag: float) -> Magnitude:
    return Magnitude(resource_id=rid(name), mag=mag, magnitude_type="ML")


def pick(name: str, station: str, phase: str, dt: float, location: str | None = "", network: str = "XX") -> Pick:
    return Pick(resource_id=rid(name), time=T0 + dt, phase_hint=phase,
                waveform_id=WaveformStreamID(network_code=network, station_code=station,
                                             location_code=location, channel_code="HHZ"))


def event(name: str, origins=(), magnitudes=(), picks=(), event_type: str | None = "earthquake",
          preferred_origin: str | None = None, preferred_magnitude: str | None = None) -> Event:
    ev = Event(resource_id=rid(name), event_type=event_type, origins=list(origins),
               magnitudes=list(magnitudes), picks=list(picks))
    if preferred_origin:
        ev.preferred_origin_id = rid(preferred_origin)
    if preferred_magnitude:
        ev.preferred_magnitude_id = rid(preferred_magnitude)
    return ev


def write(path: Path, *events: Event) -> Path:
    Catalog(events=list(events)).write(str(path), format="QUAKEML")
    return path


def simple_event(name: str, dt: float = 0.0) -> Event:
    return event(name, [origin(f"{name}/o", dt)], [magnitude(f"{name}/m", 2.5)],
                 [pick(f"{name}/p1", "STA1", "P", dt + 3.0), pick(f"{name}/s1", "STA1", "S", dt + 5.5)])


# --- tests -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog-parse")
    generate_archive(str(root), regions=["alpine"], events_per_region=8, seed=1)
    return root / "alpine" / layout.CATALOG_FILE


def test_synthetic_archive_catalog_matches_obspy(synthetic_catalog):
    ours = assert_matches_obspy(synthetic_catalog)
    assert len(ours) == 8
    assert all(len(e.picks) == 10 and all(set(p) == {"P", "S"} for p in e.picks.values()) for e in ours)
    assert {e.label for e in ours} <= {0, 1}


def test_preferred_origin_and_magnitude_need_not_come_first(tmp_path):
    ev = event("pref", [origin("pref/o1", 0.0, 45.0), origin("pref/o2", 1.5, 47.0, 9.0, 12000.0)],
               [magnitude("pref/m1", 1.0), magnitude("pref/m2", 3.3)],
               preferred_origin="pref/o2", preferred_magnitude="pref/m2")
    [info] = assert_matches_obspy(write(tmp_path / "c.xml", ev))
    assert (info.latitude, info.longitude, info.depth_km, info.magnitude) == (47.0, 9.0, 12.0, 3.3)
    assert info.origin_time == (T0 + 1.5).timestamp


def test_without_preferred_ids_the_first_origin_and_magnitude_count(tmp_path):
    ev = event("first", [origin("first/o1", 0.0, 45.0), origin("first/o2", 1.5, 47.0)],
               [magnitude("first/m1", 1.0), magnitude("first/m2", 3.3)])
    [info] = assert_matches_obspy(write(tmp_path / "c.xml", ev))
    assert (info.latitude, info.magnitude) == (45.0, 1.0)


def test_a_preferred_id_that_names_nothing_falls_back_to_the_first(tmp_path):
    ev = event("dangling", [origin("dangling/o1", 0.0, 45.0), origin("dangling/o2", 1.5, 47.0)],
               preferred_origin="dangling/nowhere", preferred_magnitude="dangling/nowhere")
    [info] = assert_matches_obspy(write(tmp_path / "c.xml", ev))
    assert info.latitude == 45.0 and math.isnan(info.magnitude)


def test_no_magnitude_is_nan_and_missing_depth_is_zero(tmp_path):
    ev = event("bare", [origin("bare/o", depth=None)])
    [info] = assert_matches_obspy(write(tmp_path / "c.xml", ev))
    assert math.isnan(info.magnitude) and info.depth_km == 0.0


def test_pick_keys_and_phases(tmp_path):
    ev = event("picks", [origin("picks/o")], picks=[
        pick("picks/1", "STA1", "P", 2.0, location=""),
        pick("picks/2", "STA2", "p", 3.0, location="00"),  # lower case counts
        pick("picks/3", "STA2", "Pn", 3.5, location="00"),  # other phases do not
        pick("picks/4", "STA3", "P", 4.0, location=None),
        pick("picks/5", "STA1", "P", 2.25, location=""),  # a later pick of STA1 P wins
        pick("picks/6", "STA1", "s", 6.0, location=""),
        pick("picks/7", "STA4", "Sg", 6.0),
    ])
    [info] = assert_matches_obspy(write(tmp_path / "c.xml", ev))
    assert info.picks == {
        "XX.STA1.": {"P": (T0 + 2.25).timestamp, "S": (T0 + 6.0).timestamp},
        "XX.STA2.00": {"P": (T0 + 3.0).timestamp},
        "XX.STA3.": {"P": (T0 + 4.0).timestamp},
    }


def test_event_types_and_labels(tmp_path):
    path = write(tmp_path / "c.xml",
                 event("t-quarry", [origin("t-quarry/o")], event_type="quarry blast"),
                 event("t-landslide", [origin("t-landslide/o")], event_type="landslide"),
                 event("t-none", [origin("t-none/o")], event_type=None))
    infos = {e.event_id: e for e in assert_matches_obspy(path)}
    assert (infos["t-quarry"].event_type, infos["t-quarry"].label) == ("quarry blast", 1)
    assert (infos["t-landslide"].event_type, infos["t-landslide"].label) == ("landslide", None)
    assert (infos["t-none"].event_type, infos["t-none"].label) == ("", None)


def test_type_spellings_are_read_as_obspy_reads_them(tmp_path):
    path = write(tmp_path / "c.xml", event("sp1", [origin("sp1/o")], event_type="quarry blast"),
                 event("sp2", [origin("sp2/o")], event_type="other event"))
    text = path.read_text().replace(">quarry blast<", ">Quarry_Blast<").replace(">other event<", ">other<")
    path.write_text(text)
    infos = {e.event_id: e for e in assert_matches_obspy(path)}
    assert (infos["sp1"].event_type, infos["sp1"].label) == ("quarry blast", 1)
    assert infos["sp2"].event_type == "other event"


def test_a_type_outside_quakeml_is_kept_without_label(tmp_path):
    """ObsPy drops such an event (with a warning); the reader keeps it, unlabelled, so
    that it is rejected with its reason rather than lost."""
    path = write(tmp_path / "c.xml", event("odd", [origin("odd/o")], event_type="quarry blast"))
    path.write_text(path.read_text().replace(">quarry blast<", "> blast <"))
    [info] = read_catalog(str(path), REGION)
    assert (info.event_id, info.event_type, info.label) == ("odd", "blast", None)


def test_elements_of_other_namespaces_are_ignored(tmp_path):
    ev = simple_event("ns")
    ev.extra = {"note": {"value": "checked", "namespace": "http://example.org/raydisc"}}
    path = write(tmp_path / "c.xml", ev)
    text = path.read_text()
    assert "ns0:note" in text
    # ObsPy writes extras last; put same-named foreign elements first, where they count
    # if the namespace is not checked.
    foreign = '<ns0:{0} xmlns:ns0="http://example.org/raydisc">99</ns0:{0}><{0}'
    for name in ("origin", "latitude", "pick", "type"):
        assert text.count(f"<{name}") >= 1
        text = text.replace(f"<{name}", foreign.format(name), 1)
    path.write_text(text)
    [info] = assert_matches_obspy(path)
    assert (info.latitude, info.event_type, len(info.picks)) == (46.5, "earthquake", 1)


def test_a_bad_time_on_a_dropped_phase_does_not_matter(tmp_path):
    path = write(tmp_path / "c.xml", event("pn", [origin("pn/o")], picks=[
        pick("pn/1", "STA1", "Pn", 2.0), pick("pn/2", "STA1", "P", 2.5)]))
    first = str(T0 + 2.0)
    text = path.read_text()
    assert text.count(first) == 1
    path.write_text(text.replace(first, "not a time"))
    [info] = assert_matches_obspy(path)
    assert info.picks == {"XX.STA1.": {"P": (T0 + 2.5).timestamp}}


def test_unreadable_optional_values_warn_and_count_as_missing(tmp_path):
    path = write(tmp_path / "c.xml", event("opt", [origin("opt/o", depth=1234.0)], [magnitude("opt/m", 2.75)]))
    path.write_text(path.read_text().replace(">1234.0<", ">deep<").replace(">2.75<", ">big<"))
    with pytest.warns(UserWarning, match="not a number"):
        [info] = read_catalog(str(path), REGION)
    assert info.depth_km == 0.0 and math.isnan(info.magnitude)
    assert comparable([info]) == comparable(reference_infos(path))


def _entries_with(tmp_path: Path, *events: Event) -> list[CatalogEntry]:
    return index_catalog(str(write(tmp_path / "c.xml", *events)))


@pytest.mark.parametrize("old,new,message", [
    (str(T0), "yesterday", "origin time 'yesterday' is not a time"),
    (">46.5<", ">north<", "origin latitude 'north' is not a number"),
    (">46.5<", ">nan<", "origin latitude 'nan' is not a finite number"),
    (">3.0<", ">inf<", "magnitude 'inf' is not a finite number"),
    ("latitude>", "lat>", "no origin latitude"),
    (str(T0 + 3.0), "2021-13-01T00:00:00Z", "P pick time of XX.STA1. '2021-13-01T00:00:00Z' is not a time"),
])
def test_unusable_values_raise_naming_the_file_and_event(tmp_path, old, new, message):
    ev = event("bad", [origin("bad/o")], [magnitude("bad/m", 3.0)], [pick("bad/p", "STA1", "P", 3.0)])
    [entry] = _entries_with(tmp_path, ev)
    assert entry.xml.count(old.encode()) >= 1
    entry = dataclasses.replace(entry, xml=entry.xml.replace(old.encode(), new.encode()))
    with pytest.raises(IngestError) as caught:
        parse_catalog_entries([entry], REGION)
    assert str(caught.value).startswith(f"{entry.source}: event bad")
    assert message in str(caught.value)


def test_a_corrupt_entry_is_isolated(tmp_path):
    good = [simple_event(f"iso-{i}", dt=60.0 * i) for i in range(4)]
    no_origin = event("iso-no-origin", origins=[], magnitudes=[magnitude("iso-no-origin/m", 1.0)])
    bad_time = simple_event("iso-bad-time", dt=600.0)
    path = write(tmp_path / "c.xml", good[0], no_origin, good[1], bad_time, good[2], good[3])
    entries = index_catalog(str(path))
    stamp = str(T0 + 600.0).encode()
    entries = [dataclasses.replace(e, xml=e.xml.replace(stamp, b"2021-03-04T99:00:00Z"))
               if e.event_id == "iso-bad-time" else e for e in entries]

    events, rejects = parse_catalog_entries_isolating(entries, REGION)

    assert sorted((r.event_id, r.station, r.reason, r.source) for r in rejects) == [
        ("iso-bad-time", "*", "bad_catalog_entry", str(path)),
        ("iso-no-origin", "*", "bad_catalog_entry", str(path)),
    ]
    details = {r.event_id: r.detail for r in rejects}
    assert details["iso-no-origin"] == f"{path}: event iso-no-origin has no origin"
    assert details["iso-bad-time"].startswith(f"{path}: event iso-bad-time: origin time")
    expected = reference_infos(write(tmp_path / "good.xml", *good))
    assert comparable(events) == comparable(expected)
    with pytest.raises(IngestError, match="iso-bad-time|iso-no-origin"):
        parse_catalog_entries(entries, REGION)


def test_an_entry_that_is_not_xml_raises(tmp_path):
    [entry] = _entries_with(tmp_path, simple_event("broken"))
    broken = dataclasses.replace(entry, xml=entry.xml[: len(entry.xml) // 2])
    with pytest.raises(IngestError, match=f"^{entry.source}: event broken: cannot read QuakeML event"):
        parse_catalog_entries([broken], REGION)
    events, rejects = parse_catalog_entries_isolating([broken, entry], REGION)
    assert [e.event_id for e in events] == ["broken"] and [r.event_id for r in rejects] == ["broken"]


def test_an_element_that_is_not_a_quakeml_event_gives_no_record(tmp_path):
    """ObsPy ignores elements of other namespaces; so does the reader."""
    [entry] = _entries_with(tmp_path, simple_event("foreign"))
    foreign = dataclasses.replace(entry, xml=entry.xml.replace(b"http://quakeml.org/xmlns/bed/1.2",
                                                               b"http://example.org/not-quakeml"))
    assert parse_catalog_entries([foreign], REGION) == []


def test_a_truncated_catalog_file_raises(tmp_path, synthetic_catalog):
    path = tmp_path / "catalog.xml"
    data = synthetic_catalog.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(IngestError, match=f"^{path}: cannot read QuakeML catalog"):
        index_catalog(str(path))
    path.write_bytes(b"this is not xml at all")
    with pytest.raises(IngestError, match=f"^{path}: cannot read QuakeML catalog"):
        read_catalog(str(path), REGION)


def test_no_entries_no_events():
    assert parse_catalog_entries([], REGION) == []
    assert parse_catalog_entries_isolating([], REGION) == ([], [])
