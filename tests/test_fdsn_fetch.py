"""`fetch` builds an archive from FDSN web services (a loopback service over the
synthetic archive, talked to by ObsPy's real client) that gives the same model inputs;
it resumes, spaces its requests and records failed ones."""
from __future__ import annotations

import time

import numpy as np
import obspy
import pytest
from obspy.clients.fdsn import Client

from raydisc.config import ConfigError
from raydisc.data import layout
from raydisc.data.archive_writer import read_import_rejects
from raydisc.data.catalog import read_catalog
from raydisc.data.fdsn import FetchConfig, fetch_archive, safe_event_id

from fdsn_server import LoopbackFDSN
from source_helpers import model_inputs

REGION = "basin"


@pytest.fixture(scope="module")
def service(source_archive):
    with LoopbackFDSN(source_archive, REGION) as server:
        yield server


def _config(source_archive, **overrides) -> FetchConfig:
    times = [e.origin_time for e in read_catalog(layout.catalog_uri(source_archive, REGION), REGION)]
    values = dict(region="fetched", starttime=str(obspy.UTCDateTime(min(times) - 60)),
                  endtime=str(obspy.UTCDateTime(max(times) + 60)), max_distance_km=500.0,
                  requests_per_second=20.0, retries=1, retry_wait_s=0.0)
    return FetchConfig(**{**values, **overrides})


def test_fetch_gives_the_archive_model_inputs_and_resumes(service, source_archive, tmp_path):
    client = Client(service.url, _discover_services=False)
    out = str(tmp_path / "archive")
    events = read_catalog(layout.catalog_uri(source_archive, REGION), REGION)
    failing = events[1].event_id
    service.fail_events = {failing}
    config = _config(source_archive)
    try:
        first = fetch_archive(client, out, config)
    finally:
        service.fail_events = set()
    assert first["events"] == 4 and first["written"] == 3
    failures = read_import_rejects(out, "fetched")
    assert [(r.event_id, r.reason) for r in failures] == [(failing, "missing_waveform_file")]
    assert "500" in failures[0].detail and "after 2 tries" in failures[0].detail

    asked = len(service.requests)
    second = fetch_archive(client, out, config)
    assert second["written"] == 1 and second["skipped"] == 3 and second["requests"] == 1
    assert service.requests[asked:] == ["/fdsnws/dataselect/1/query"]  # catalog and inventory were on disk
    assert read_import_rejects(out, "fetched") == []

    assert sorted(e.event_id for e in read_catalog(layout.catalog_uri(out, "fetched"), "fetched")) == \
        sorted(e.event_id for e in events)
    fetched, original = model_inputs(out, "fetched"), model_inputs(source_archive, REGION)
    assert len(original) == 36 and sorted(fetched) == sorted(original)
    for key, value in original.items():
        np.testing.assert_array_equal(fetched[key]["waveform"], value["waveform"])
        assert fetched[key]["label"] == value["label"]


def test_fetch_selects_types_and_distances_and_spaces_requests(service, source_archive, tmp_path):
    client = Client(service.url, _discover_services=False)
    config = _config(source_archive, event_types=("earthquake",), max_distance_km=25.0, requests_per_second=4.0)
    started = time.monotonic()
    summary = fetch_archive(client, str(tmp_path / "a"), config)
    elapsed = time.monotonic() - started
    catalog = read_catalog(layout.catalog_uri(str(tmp_path / "a"), "fetched"), "fetched")
    assert {e.event_type for e in catalog} == {"earthquake"} and summary["events"] == len(catalog) == 2
    assert elapsed >= (summary["requests"] - 1) / 4.0
    for event in catalog:
        stations = {tr.stats.station for tr in obspy.read(layout.waveform_uri(str(tmp_path / "a"), "fetched",
                                                                               event.event_id))}
        assert 0 < len(stations) < 9  # only the stations within 25 km


def test_fetch_without_events_is_an_error_that_names_the_service(service, source_archive, tmp_path):
    from raydisc.data.records import IngestError

    client = Client(service.url, _discover_services=False)
    config = _config(source_archive, starttime="2000-01-01", endtime="2000-01-02")
    with pytest.raises(IngestError, match="fdsnws-event"):
        fetch_archive(client, str(tmp_path / "a"), config)


def test_fetch_config_and_ids():
    assert safe_event_id("smi:service.example/fdsnws/event/1/query?eventid=us7000abcd") == "us7000abcd"
    assert safe_event_id("quakeml:eu.emsc/event/20240101_0000001") == "20240101_0000001"
    with pytest.raises(ConfigError):
        FetchConfig(region="r", starttime="2022-01-02", endtime="2022-01-01")
    with pytest.raises(ConfigError):
        FetchConfig(region="r", starttime="2022-01-01", endtime="2022-01-02", requests_per_second=0)
