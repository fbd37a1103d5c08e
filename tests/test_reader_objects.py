"""The catalog and inventory readers given ObsPy objects give what they give for the files.

:func:`raydisc.data.catalog.read_catalog` reads an ``obspy.Catalog`` or ``Event`` straight
from its objects and :func:`raydisc.data.inventory.read_stations` an ``obspy.Inventory``;
the records must be those of the same catalog or inventory written to QuakeML / StationXML
by ObsPy and read from the file (lxml path for QuakeML). Uploaded StationXML bytes
(:func:`raydisc.serving.inputs.stations_from_stationxml`) are parsed once, by the same
reader. Real files from the synthetic generator and ObsPy's example data; no Ray.
"""
from __future__ import annotations

import dataclasses
import io
import math
import warnings

import numpy as np
import obspy
import pytest
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Magnitude, Origin, Pick, ResourceIdentifier, WaveformStreamID

from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.inventory import StationInfo, read_stations
from raydisc.data.records import IngestError
from raydisc.serving.inputs import InputError, stations_from_stationxml

REGIONS = ("alpine", "basin", "craton")
T0 = UTCDateTime("2021-03-04T05:06:07.123456Z")
#: Frequencies (Hz) at which two channel responses are compared.
FREQUENCIES = np.geomspace(0.05, 20.0, 25)


def comparable_events(events) -> list[dict]:
    rows = []
    for info in events:
        row = dataclasses.asdict(info)
        row["magnitude"] = "nan" if math.isnan(row["magnitude"]) else row["magnitude"]
        rows.append(row)
    return rows


def comparable_stations(stations: dict[str, StationInfo]) -> dict:
    """Station records with NaNs made comparable and each full response replaced by its
    velocity response at :data:`FREQUENCIES` (complex, counts per m/s)."""
    def plain(value):
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    out = {}
    for key, station in stations.items():
        channels = []
        for channel in station.channels:
            row = {k: plain(v) for k, v in dataclasses.asdict(channel).items() if k != "response"}
            if channel.response is not None:
                row["response"] = np.round(channel.response.get_evalresp_response_for_frequencies(
                    FREQUENCIES, output="VEL"), 6).tolist()
            channels.append(row)
        out[key] = (station.network, station.station, plain(station.latitude), plain(station.longitude),
                    plain(station.elevation_m), channels)
    return out


def quakeml_file(catalog: Catalog, tmp_path) -> str:
    path = tmp_path / "catalog.xml"
    catalog.write(str(path), format="QUAKEML")
    return str(path)


def rid(name: str) -> ResourceIdentifier:
    return ResourceIdentifier(f"smi:local/objects/{name}")


def pick(name: str, station: str, phase: str, dt: float, location: str | None) -> Pick:
    return Pick(resource_id=rid(name), time=T0 + dt, phase_hint=phase,
                waveform_id=WaveformStreamID(network_code="XX", station_code=station, location_code=location,
                                             channel_code="HHZ"))


def edge_case_catalog() -> Catalog:
    """Events whose reading needs the rules: a preferred origin that two origins share (the
    last one counts), a preferred magnitude that names none (the first counts), no depth,
    no magnitude value, no type, picks without a location code, lower-case and unused phases."""
    shared = Event(resource_id=rid("shared"), event_type="quarry blast",
                   origins=[Origin(resource_id=rid("o1"), time=T0, latitude=46.0, longitude=8.0, depth=3000.0),
                            Origin(resource_id=rid("o2"), time=T0 + 1, latitude=46.5, longitude=8.5, depth=2000.0),
                            Origin(resource_id=rid("o2"), time=T0 + 2, latitude=47.0, longitude=9.0, depth=1000.0)],
                   magnitudes=[Magnitude(resource_id=rid("m1"), mag=2.1), Magnitude(resource_id=rid("m2"), mag=2.4)],
                   picks=[pick("p1", "AAA", "P", 3.0, ""), pick("p2", "AAA", "s", 5.0, ""),
                          pick("p3", "BBB", "p", 4.0, None), pick("p4", "BBB", "Pn", 4.5, None),
                          pick("p5", "AAA", "P", 3.5, "")])
    shared.preferred_origin_id = rid("o2")
    shared.preferred_magnitude_id = rid("m-none")
    bare = Event(resource_id=rid("bare"), event_type=None,
                 origins=[Origin(resource_id=rid("o3"), time=T0 + 60, latitude=-12.25, longitude=170.0)],
                 magnitudes=[Magnitude(resource_id=rid("m3"))])
    return Catalog([bare, shared])


def test_catalog_objects_read_as_their_quakeml(tiny_archive, tmp_path):
    for region in REGIONS:
        uri = layout.catalog_uri(tiny_archive, region)
        from_file = read_catalog(uri, region)
        assert from_file and comparable_events(read_catalog(obspy.read_events(uri), region)) == \
            comparable_events(from_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        example = obspy.read_events()  # ObsPy's example catalog: no picks, several magnitudes
    for catalog in (example, edge_case_catalog()):
        from_file = read_catalog(quakeml_file(catalog, tmp_path), "objects")
        assert comparable_events(read_catalog(catalog, "objects")) == comparable_events(from_file)
    # the rules applied, not just both paths agreeing
    bare, shared = read_catalog(edge_case_catalog(), "objects")
    assert (shared.origin_time, shared.latitude, shared.magnitude) == (T0.timestamp + 2, 47.0, 2.1)
    assert shared.picks == {"XX.AAA.": {"P": T0.timestamp + 3.5, "S": T0.timestamp + 5.0},
                            "XX.BBB.": {"P": T0.timestamp + 4.0}}
    assert (bare.event_type, bare.label, bare.depth_km, math.isnan(bare.magnitude)) == ("", None, 0.0, True)
    # one Event is read as a catalog of one
    one = edge_case_catalog()[1]
    assert comparable_events(read_catalog(one, "objects")) == comparable_events([shared])


def test_unusable_event_objects_are_refused_as_their_files(tmp_path):
    no_origin = Event(resource_id=rid("no-origin"), event_type="earthquake")
    no_time = Event(resource_id=rid("no-time"), event_type="earthquake",
                    origins=[Origin(resource_id=rid("o4"), latitude=46.0, longitude=8.0)])
    for event, message in ((no_origin, "has no origin"), (no_time, "no origin time")):
        with pytest.raises(IngestError, match=message):
            read_catalog(event, "objects")
        with pytest.raises(IngestError, match=message):
            read_catalog(quakeml_file(Catalog([event]), tmp_path), "objects")


def test_inventory_objects_and_uploads_read_as_their_stationxml(tiny_archive, tmp_path):
    for region in REGIONS:
        uri = layout.inventory_uri(tiny_archive, region)
        from_file = comparable_stations(read_stations(uri))
        assert from_file
        assert comparable_stations(read_stations(obspy.read_inventory(uri))) == from_file
        with open(uri, "rb") as f:
            assert comparable_stations(stations_from_stationxml(f.read())) == from_file
    example = obspy.read_inventory()  # ObsPy's example: BW.RJOB and GR.FUR/WET, full responses
    path = tmp_path / "inventory.xml"
    example.write(str(path), format="STATIONXML")
    from_object = read_stations(example)
    assert {"BW.RJOB", "GR.FUR", "GR.WET"} <= set(from_object)
    assert any(c.response_kind == "full" for s in from_object.values() for c in s.channels)
    assert comparable_stations(from_object) == comparable_stations(read_stations(str(path)))


def test_uploaded_bytes_that_are_not_stationxml_are_an_input_error():
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy's example catalog has ids it calls invalid
        obspy.read_events().write(buf, format="QUAKEML")
    for data in (b"", b"<not-xml", buf.getvalue()):
        with pytest.raises(InputError, match="^uploaded StationXML: cannot read StationXML inventory"):
            stations_from_stationxml(data)
