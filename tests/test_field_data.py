"""Ingestion of data as real networks record it, on the real recordings and inventory
ObsPy ships (BW.RJOB, a 3-component short-period station at 100 Hz, and an inventory
with several epochs of it): vertical-only stations, numbered horizontals, catalogs
without picks, partial StationXML, low sampling rates, several bands per station."""
from __future__ import annotations

import copy
import dataclasses
import io
import math

import numpy as np
import obspy
import pytest
from lxml import etree
from obspy.geodetics import gps2dist_azimuth

from raydisc.config import PreprocessConfig
from raydisc.data.catalog import EventInfo
from raydisc.data.inventory import read_stations, stations_from_inventory
from raydisc.features.batch import preprocess_recordings
from raydisc.data.recordings import cut_recordings_from_stream
from raydisc.data.traveltimes import first_p_travel_time
from raydisc.features import drop_components

# obspy.read() holds 30 s from 00:20:03; a 20 s window from 3 s before the P pick, with
# 2 s padding, fits.
CONFIG = PreprocessConfig(window_start_s=-3.0, window_length_s=20.0, padding_s=2.0)
P_TIME = obspy.UTCDateTime("2009-08-24T00:20:10").timestamp
KEY = "BW.RJOB"


def _event(picks=True, **changes) -> EventInfo:
    event = EventInfo(event_id="ev1", region="field", event_type="earthquake", label=0,
                      origin_time=P_TIME - 9.0, latitude=47.5, longitude=12.5, depth_km=10.0, magnitude=2.0,
                      picks={f"{KEY}.": {"P": P_TIME}} if picks else {})
    return dataclasses.replace(event, **changes)


@pytest.fixture(scope="module")
def inventory():
    return obspy.read_inventory()


@pytest.fixture(scope="module")
def stream():
    return obspy.read()


def _cut(stream, inventory, event=None, config=CONFIG):
    return cut_recordings_from_stream(stream, event or _event(), stations_from_inventory(inventory), config,
                                      source="obspy example")


def test_three_components_with_the_epoch_of_the_event(stream, inventory):
    recordings, rejects = _cut(stream, inventory)
    (rec,) = recordings
    assert rec.key == "BW.RJOB." and rec.components == "ZNE" and rec.channel_codes == ("EHZ", "EHN", "EHE")
    # RJOB has three epochs; the 2001-2006 one (200 Hz) must not be chosen for a 2009 event.
    assert rec.sampling_rate == 100.0 and rec.channels[0].start > obspy.UTCDateTime("2007-01-01").timestamp
    assert rec.response_kind == "full" and rec.pick_source == "catalog"
    # The inventory's other stations did not record: not losses, and named as such.
    assert {r.reason for r in rejects} == {"not_recorded"}
    assert {r.station.rsplit(".", 1)[0] for r in rejects} == {"GR.FUR", "GR.WET"}


def test_vertical_only_equals_three_components_with_horizontals_dropped(stream, inventory):
    (three,), _ = _cut(stream, inventory)
    (vertical,), _ = _cut(stream.select(channel="EHZ"), inventory)
    assert vertical.components == "Z" and vertical.channel_codes == ("EHZ",)
    assert not vertical.counts[1:].any()
    for kind in ("waveform", "spectrogram"):
        x3 = preprocess_recordings([three], CONFIG)[kind]
        xz = preprocess_recordings([vertical], CONFIG)[kind]
        assert not xz[:, 1:].any()
        dropped = drop_components(x3, kind, np.array([[True, False, False]]))
        np.testing.assert_allclose(xz, dropped, atol=1e-4)


def test_full_response_removal_agrees_with_obspy(stream, inventory):
    # The naive per-trace ObsPy chain on the same window: remove_response, then the same
    # band-pass and resampling; the vertical must agree with raydisc's single FFT pass.
    (rec,), _ = _cut(stream, inventory)
    ours = preprocess_recordings([rec], CONFIG)["waveform"][0, 0]
    start = obspy.UTCDateTime(P_TIME + CONFIG.window_start_s - CONFIG.padding_s)
    trace = stream.select(channel="EHZ")[0].copy().trim(start, start + 24.0 - 0.01)
    trace.detrend("linear")
    trace.taper(CONFIG.taper_fraction, type="cosine")
    trace.remove_response(inventory=inventory, output="VEL", water_level=60, taper=False)
    trace.filter("bandpass", freqmin=CONFIG.freqmin_hz, freqmax=CONFIG.freqmax_hz, corners=4, zerophase=True)
    trace.resample(CONFIG.target_rate_hz)
    pad = int(CONFIG.padding_s * CONFIG.target_rate_hz)
    theirs = trace.data[pad : pad + CONFIG.n_samples]
    corr = np.corrcoef(ours, theirs)[0, 1]
    assert corr > 0.995, corr
    # And the sensitivity alone is measurably different for this 1 Hz short-period sensor.
    sens = preprocess_recordings([rec], dataclasses.replace(CONFIG, response_removal="sensitivity"))["waveform"][0, 0]
    assert np.corrcoef(ours, sens)[0, 1] < corr


def test_numbered_horizontals_are_rotated_to_north_and_east(stream, inventory):
    # The same ground motion recorded by horizontals at azimuths 30 and 120 degrees, named 1/2.
    az1 = 30.0
    north, east = (stream.select(channel=c)[0].data.astype(np.float64) for c in ("EHN", "EHE"))
    a1, a2 = np.radians(az1), np.radians(az1 + 90)
    rotated = stream.copy()
    for tr in rotated:
        if tr.stats.channel == "EHN":
            tr.stats.channel, tr.data = "EH1", north * np.cos(a1) + east * np.sin(a1)
        elif tr.stats.channel == "EHE":
            tr.stats.channel, tr.data = "EH2", north * np.cos(a2) + east * np.sin(a2)
    inv = copy.deepcopy(inventory)
    for channel in inv.select(station="RJOB")[0][0].channels + [c for s in inv.select(station="RJOB")[0] for c in s]:
        if channel.code == "EHN":
            channel.code, channel.azimuth = "EH1", az1
        elif channel.code == "EHE":
            channel.code, channel.azimuth = "EH2", az1 + 90
    (rec,), _ = _cut(rotated, inv)
    (ref,), _ = _cut(stream, inventory)
    assert rec.components == "ZNE" and rec.channel_codes == ("EHZ", "EH1", "EH2")
    np.testing.assert_allclose(rec.counts, ref.counts, atol=1e-6 * np.abs(ref.counts).max())


def test_without_a_catalog_pick_the_p_arrival_is_predicted(stream, inventory):
    station = stations_from_inventory(inventory)[KEY]
    event = _event(picks=False)
    distance = gps2dist_azimuth(event.latitude, event.longitude, station.latitude, station.longitude)[0] / 1000
    predicted = event.origin_time + float(first_p_travel_time("iasp91", event.depth_km, distance))
    # Place the origin so that the predicted arrival falls inside the example data.
    event = dataclasses.replace(event, origin_time=event.origin_time + (P_TIME - predicted))
    (rec,), _ = _cut(stream, inventory, event)
    assert rec.pick_source == "predicted" and math.isclose(rec.distance_km, distance)
    (picked,), _ = _cut(stream, inventory, dataclasses.replace(event, picks={f"{KEY}.": {"P": P_TIME}}))
    np.testing.assert_allclose(rec.counts, picked.counts)  # same window: predicted == picked time here
    # pick_source "catalog" keeps the strict behaviour: no pick, no recording.
    _, rejects = _cut(stream, inventory, event, dataclasses.replace(CONFIG, pick_source="catalog"))
    assert [r.reason for r in rejects if r.station.startswith(KEY)] == ["no_p_pick"]


def _rjob_2009(inventory):
    inv = copy.deepcopy(inventory.select(station="RJOB"))
    return inv, [c for s in inv[0] for c in s]


def test_partial_inventory_costs_only_what_is_missing(stream, inventory):
    inv, channels = _rjob_2009(inventory)
    for c in channels:
        c.response.response_stages = []  # sensitivity only
    (rec,), rejects = _cut(stream, inv)
    assert rec.response_kind == "sensitivity"
    for c in channels:
        c.response = None  # nothing at all
    recs, rejects = _cut(stream, inv)
    assert not recs and [r.reason for r in rejects] == ["no_response"] and "EHZ" in rejects[0].detail
    (rec,), _ = _cut(stream, inv, config=dataclasses.replace(CONFIG, allow_missing_response=True))
    assert rec.response_kind == "none" and np.isfinite(preprocess_recordings([rec], CONFIG)["waveform"]).all()


def test_station_without_coordinates(stream, inventory, tmp_path):
    # StationXML without a station's Latitude/Longitude: ObsPy refuses the whole file,
    # raydisc reads it and that station has no coordinates.
    inv, _ = _rjob_2009(inventory)
    buffer = io.BytesIO()
    inv.write(buffer, format="STATIONXML")
    root = etree.fromstring(buffer.getvalue())
    for element in list(root.iter("{*}Latitude", "{*}Longitude")):
        element.getparent().remove(element)
    path = tmp_path / "inventory.xml"
    path.write_bytes(etree.tostring(root))
    with pytest.raises(TypeError):
        obspy.read_inventory(str(path))
    stations = read_stations(str(path))
    assert not stations[KEY].has_coordinates
    (rec,), _ = cut_recordings_from_stream(stream, _event(), stations, CONFIG)  # a catalog pick needs none
    assert math.isnan(rec.distance_km)
    recs, rejects = cut_recordings_from_stream(stream, _event(picks=False), stations, CONFIG)
    assert not recs and [r.reason for r in rejects] == ["no_station_coordinates"]


def test_sampling_rate_below_the_band_is_rejected_naming_it(stream, inventory):
    low = stream.copy().decimate(5, no_filter=True)  # 20 Hz
    inv, channels = _rjob_2009(inventory)
    for c in channels:
        c.sample_rate = 20.0
    recs, rejects = _cut(low, inv)
    assert not recs and rejects[0].reason == "sampling_rate_too_low"
    assert "20 Hz" in rejects[0].detail and "37.9 Hz" in rejects[0].detail


def test_channel_priority_and_missing_vertical(stream, inventory):
    # A second sensor at location 10 recording HH: HH comes first in the default priority.
    inv, channels = _rjob_2009(inventory)
    hh = stream.copy()
    for tr in hh:
        tr.stats.location, tr.stats.channel = "10", "HH" + tr.stats.channel[-1]
    station = inv[0][-1]
    for c in list(station.channels):
        twin = copy.deepcopy(c)
        twin.location_code, twin.code = "10", "HH" + c.code[-1]
        station.channels.append(twin)
    (rec,), _ = _cut(stream + hh, inv)
    assert rec.key == "BW.RJOB.10" and rec.channel_codes == ("HHZ", "HHN", "HHE")
    (rec,), _ = _cut(stream + hh, inv, config=dataclasses.replace(CONFIG, channel_priority=("EH",)))
    assert rec.key == "BW.RJOB." and rec.channel_codes[0] == "EHZ"
    recs, rejects = _cut(stream.select(channel="EH[NE]"), inv)
    assert not recs and rejects[0].reason == "missing_component" and "EHE" in rejects[0].detail


def test_data_outside_every_epoch_and_unknown_stations(stream, inventory):
    inv, channels = _rjob_2009(inventory)
    for c in channels:
        c.end_date = obspy.UTCDateTime("2008-01-01")  # a gap in the StationXML covers the event
    _, rejects = _cut(stream, inv)
    assert [r.reason for r in rejects] == ["no_station_metadata"] and "epoch" in rejects[0].detail
    stranger = stream.copy()
    for tr in stranger:
        tr.stats.station = "XXX"
    _, rejects = _cut(stranger, inventory)
    assert ("BW.XXX.", "no_station_metadata") in {(r.station, r.reason) for r in rejects}
