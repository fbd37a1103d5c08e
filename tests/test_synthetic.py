"""Tests of the synthetic multi-region generator (raydisc.synthetic).

Tiny archives (a few events per region) are written once per module; statistical
checks use the event-level sampler or in-memory synthesis, which need no files. alpine
and basin record like textbook networks (complete 3-component data, picks, full
StationXML); craton and the field-test preset like field networks (see the second
half of the file).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from obspy import UTCDateTime, read, read_events, read_inventory

from lxml import etree

from raydisc.data import layout
from raydisc.labels import label_of
from raydisc.synthetic import (
    EARTHQUAKE,
    FIELD_TEST,
    QUARRY_BLAST,
    REGIONS,
    RecordingSpec,
    build_network,
    build_plan,
    field_test_spec,
    generate_archive,
    sample_event,
)
from raydisc.synthetic import physics
from raydisc.synthetic.events import CLASS_ANCHOR_SPAN, true_type_of, waveform_rng
from raydisc.synthetic.generate import STATION_COLUMNS, TRUTH_COLUMNS, WAVEFORM_FILE_COLUMN, stations_uri
from raydisc.synthetic.stations import apportion, band_code, corner_period_s
from raydisc.synthetic.waveforms import build_grid, synthesize_counts

SMALL = {"alpine": 8, "basin": 7, "craton": 6}
#: Synthesis rates; alpine and basin stations record at them, craton's at 20-500 Hz.
EXPECTED_RATES = {"alpine": 200.0, "basin": 100.0, "craton": 100.0}
#: Regions recorded like textbook networks (the default RecordingSpec).
COMPLETE = [name for name, spec in REGIONS.items() if spec.recording == RecordingSpec()]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[str, dict]:
    root = str(tmp_path_factory.mktemp("synthetic") / "archive")
    summary = generate_archive(root, events_per_region=SMALL, seed=0)
    return root, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _truth(root: str, region: str) -> list[dict]:
    with open(layout.truth_uri(root, region), newline="") as f:
        return list(csv.DictReader(f))


def _stations(root: str, region: str) -> list[dict]:
    with open(stations_uri(root, region), newline="") as f:
        return list(csv.DictReader(f))


def _channel_ids(rows: list[dict], network: str) -> set[str]:
    """SEED ids of every channel that ``stations.csv`` rows say is recorded."""
    return {f"{network}.{r['station']}.{r['location']}.{c}" for r in rows for c in r["channels"].split()}


# ------------------------------------------------------------------------ API, files
def test_regions_are_the_three_documented_ones():
    assert list(REGIONS) == ["alpine", "basin", "craton"]
    assert {name: spec.sampling_rate_hz for name, spec in REGIONS.items()} == EXPECTED_RATES
    codes = [spec.network.code for spec in REGIONS.values()]
    assert len(set(codes)) == 3 and all(len(c) == 2 for c in codes)
    assert len({spec.instrument.name for spec in REGIONS.values()}) == 3
    assert COMPLETE == ["alpine", "basin"]
    for spec in REGIONS.values():
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.blast_fraction = 0.5  # type: ignore[misc]


def test_summary_and_layout(archive):
    root, summary = archive
    assert set(summary) == set(REGIONS)
    assert layout.list_regions(root) == sorted(REGIONS)
    for region, s in summary.items():
        n_sta = REGIONS[region].network.n_stations
        assert s["events"] == SMALL[region]
        assert s[EARTHQUAKE] + s[QUARRY_BLAST] == s["events"]
        assert s["stations"] == n_sta and s["recordings"] == n_sta * s["events"]
        names = sorted(p.name for p in Path(root, region, layout.WAVEFORM_DIR).iterdir())
        assert names == [f"{region}-{i:06d}.mseed" for i in range(SMALL[region])]
        assert not list(Path(root).rglob("*.tmp-*")), "temporary files left behind"


def test_catalog_round_trip(archive):
    root, _ = archive
    for region, spec in REGIONS.items():
        catalog = read_events(layout.catalog_uri(root, region))
        truth = {row["event_id"]: row for row in _truth(root, region)}
        assert len(catalog) == SMALL[region]
        for i, event in enumerate(catalog):
            event_id = layout.event_id_from_resource_id(event.resource_id)
            assert str(event.resource_id) == f"{layout.RESOURCE_ID_PREFIX}{region}-{i:06d}"
            assert event.event_type in (EARTHQUAKE, QUARRY_BLAST)
            label_of(event.event_type, event_id=event_id)  # the label map knows it
            assert truth[event_id]["catalog_type"] == event.event_type
            (origin,) = event.origins
            assert origin.depth is not None and origin.depth >= 0  # metres
            assert abs(origin.latitude - spec.latitude) < 3 and abs(origin.longitude - spec.longitude) < 5
            (magnitude,) = event.magnitudes
            assert magnitude.magnitude_type == "ML" and -1 < magnitude.mag < 6
            if region not in COMPLETE:
                assert not spec.recording.picks and event.picks == [] and origin.arrivals == []
                continue
            stations = {p.waveform_id.station_code for p in event.picks}
            assert len(stations) == spec.network.n_stations
            assert len(event.picks) == 2 * len(stations)
            for pick in event.picks:
                assert pick.phase_hint in ("P", "S")
                wid = pick.waveform_id
                assert (wid.network_code, wid.location_code, wid.channel_code) == (
                    spec.network.code,
                    "",
                    spec.channel_codes[0],
                )
            picks = {p.resource_id: p for p in event.picks}
            assert len(origin.arrivals) == len(event.picks)
            for arrival in origin.arrivals:
                assert picks[arrival.pick_id].phase_hint == arrival.phase
            # S after P at every station; picks near the travel times of the truth.
            by_station = {}
            for p in event.picks:
                by_station.setdefault(p.waveform_id.station_code, {})[p.phase_hint] = p.time
            assert all(t["S"] > t["P"] > origin.time for t in by_station.values())


def test_inventory_round_trip_and_response(archive):
    root, _ = archive
    freqs = np.array([0.2, 1.0, 3.0, 10.0, 20.0])
    for region in COMPLETE:
        spec = REGIONS[region]
        inventory = read_inventory(layout.inventory_uri(root, region))
        (network,) = inventory.networks
        assert network.code == spec.network.code
        assert len(network.stations) == spec.network.n_stations
        for station in network:
            assert len(station.channels) == 3
            by_code = {c.code[-1]: c for c in station.channels}
            assert set(by_code) == set("ZNE")
            assert [c.code for c in station.channels] == list(spec.channel_codes)
            assert (by_code["Z"].dip, by_code["N"].azimuth, by_code["E"].azimuth) == (-90.0, 0.0, 90.0)
            for channel in station.channels:
                assert channel.sample_rate == spec.sampling_rate_hz
                sensitivity = channel.response.instrument_sensitivity
                assert sensitivity is not None
                assert sensitivity.input_units == "M/S" and sensitivity.output_units == "COUNTS"
                assert sensitivity.value == pytest.approx(spec.instrument.sensitivity_counts_per_m_s, rel=1e-6)
        # The response written is the one applied to the synthetic ground velocity.
        written = network[0][0].response.get_evalresp_response_for_frequencies(freqs, output="VEL")
        applied = physics.instrument_response(freqs, spec.instrument)
        np.testing.assert_allclose(written, applied, rtol=1e-6)


def test_waveform_round_trip(archive):
    root, _ = archive
    for region in COMPLETE:
        spec = REGIONS[region]
        catalog = read_events(layout.catalog_uri(root, region))
        for event in catalog:
            event_id = layout.event_id_from_resource_id(event.resource_id)
            stream = read(layout.waveform_uri(root, region, event_id))
            assert len(stream) == 3 * spec.network.n_stations
            origin = event.origins[0].time
            for trace in stream:
                assert trace.data.dtype == np.int32
                assert trace.stats.mseed.encoding == "STEIM2"
                assert trace.stats.sampling_rate == EXPECTED_RATES[region]
                assert trace.stats.network == spec.network.code and trace.stats.location == ""
                assert trace.stats.channel in spec.channel_codes
                assert np.abs(trace.data).max() <= 2**23
            for station in {tr.stats.station for tr in stream}:
                three = stream.select(station=station)
                assert sorted(tr.stats.channel[-1] for tr in three) == ["E", "N", "Z"]
                p_time = next(p.time for p in event.picks if p.waveform_id.station_code == station and p.phase_hint == "P")
                for trace in three:
                    start, end = trace.stats.starttime, trace.stats.endtime
                    # Catalog origin time is the true one here; picks carry < 1 s errors.
                    assert start <= origin - 29.9 and end >= origin + 149.9
                    assert start <= p_time - 10 and end >= p_time + 80


def test_truth_csv(archive):
    root, _ = archive
    for region in REGIONS:
        rows = _truth(root, region)
        assert tuple(rows[0]) == TRUTH_COLUMNS
        assert [r["event_id"] for r in rows] == [f"{region}-{i:06d}" for i in range(SMALL[region])]
        for r in rows:
            assert r["true_type"] in (EARTHQUAKE, QUARRY_BLAST)
            assert (r["quarry"] != "") == (r["true_type"] == QUARRY_BLAST)
            UTCDateTime(r["origin_time"])


def test_unknown_region_and_bad_counts_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown region"):
        generate_archive(str(tmp_path), regions=["atlantis"], events_per_region=1)
    with pytest.raises(ValueError, match="no entry"):
        generate_archive(str(tmp_path), regions=["alpine"], events_per_region={"basin": 1})
    with pytest.raises(ValueError):
        generate_archive(str(tmp_path), regions=["alpine"], events_per_region=-1)


# ------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    for name in ("a", "b", "c"):
        generate_archive(str(tmp_path / name), regions=["craton"], events_per_region=2, seed=0 if name != "c" else 1)
    a, b, c = (_files(tmp_path / name) for name in ("a", "b", "c"))
    assert a.keys() == b.keys() == c.keys()
    assert a == b
    for key in a:
        if key.endswith((".mseed", "catalog.xml", "truth.csv")):
            assert a[key] != c[key], key


def test_event_does_not_depend_on_archive_size(tmp_path):
    generate_archive(str(tmp_path / "small"), regions=["craton"], events_per_region=2)
    generate_archive(str(tmp_path / "large"), regions=["craton"], events_per_region=4)
    for i in range(2):
        rel = Path("craton", layout.WAVEFORM_DIR, f"craton-{i:06d}.mseed")
        assert (tmp_path / "small" / rel).read_bytes() == (tmp_path / "large" / rel).read_bytes()
    spec = REGIONS["alpine"]
    e1, e2 = sample_event(spec, 3, 17), sample_event(spec, 3, 17)
    assert (e1.origin_time, e1.magnitude, e1.depth_km, e1.true_type) == (e2.origin_time, e2.magnitude, e2.depth_km, e2.true_type)
    np.testing.assert_array_equal(e1.p_pick_error_s, e2.p_pick_error_s)


# ------------------------------------------------------------------- event statistics
def _events(region: str, n: int, seed: int = 0):
    spec = REGIONS[region]
    return [sample_event(spec, seed, i) for i in range(n)]


def test_class_balance_per_region():
    fractions = {}
    for region, spec in REGIONS.items():
        types = [true_type_of(spec, 0, i) for i in range(2000)]
        fractions[region] = types.count(QUARRY_BLAST) / len(types)
        assert fractions[region] == pytest.approx(spec.blast_fraction, abs=0.01)
    assert fractions["craton"] < 0.1 and fractions["craton"] == min(fractions.values())
    assert fractions["alpine"] > fractions["basin"] > fractions["craton"]


def test_craton_has_fewest_blasts_in_written_archive(archive):
    _, summary = archive
    blasts = {r: s[QUARRY_BLAST] for r, s in summary.items()}
    assert blasts["craton"] < blasts["basin"] and blasts["craton"] < blasts["alpine"]


@pytest.mark.parametrize("seed", range(8))
def test_tiny_archives_hold_both_classes(seed):
    for spec in REGIONS.values():
        types = {true_type_of(spec, seed, i) for i in range(CLASS_ANCHOR_SPAN)}
        assert types == {EARTHQUAKE, QUARRY_BLAST}


def test_label_noise_rate():
    events = [e for region in REGIONS for e in _events(region, 3000)]
    flipped = [e for e in events if e.label_flipped]
    rate = len(flipped) / len(events)
    assert 0.006 < rate < 0.015, rate  # configured 1 %
    assert all(e.catalog_type != e.true_type for e in flipped)
    assert {e.true_type for e in flipped} == {EARTHQUAKE, QUARRY_BLAST}


def test_depths_and_locations():
    for region, spec in REGIONS.items():
        events = _events(region, 300)
        quakes = [e for e in events if not e.is_blast]
        blasts = [e for e in events if e.is_blast]
        assert min(e.depth_km for e in quakes) > max(e.depth_km for e in blasts)
        assert max(e.depth_km for e in blasts) < 0.3
        assert np.mean([e.depth_km for e in quakes]) > 5.0
        sites = {q.name: q for q in spec.blasting.quarries}
        for e in blasts:
            site = sites[e.quarry]
            assert math.hypot(e.east_km - site.east_km, e.north_km - site.north_km) < 3.0
            assert len(e.shot_times_s) >= 2 and e.shot_times_s.max() < 10.0


def test_blasts_in_working_hours_on_weekdays():
    for region, spec in REGIONS.items():
        blasts = [e for e in _events(region, 400) if e.is_blast]
        assert blasts
        start, end = spec.blasting.working_hours
        for e in blasts:
            local = e.origin_time + spec.utc_offset_h * 3600
            assert local.weekday < 5
            assert start <= local.hour + local.minute / 60 + local.second / 3600 <= end
        # Earthquakes happen around the clock.
        hours = [(e.origin_time + spec.utc_offset_h * 3600).hour for e in _events(region, 400) if not e.is_blast]
        assert min(hours) < start or max(hours) >= end


def test_magnitudes_overlap_between_classes():
    for region in REGIONS:
        events = _events(region, 600)
        quakes = np.array([e.magnitude for e in events if not e.is_blast])
        blasts = np.array([e.magnitude for e in events if e.is_blast])
        lo, hi = np.percentile(quakes, [5, 95])
        assert np.mean((blasts > lo) & (blasts < hi)) > 0.8  # blasts sit inside the quakes' range
        lo, hi = np.percentile(blasts, [5, 95])
        assert np.mean((quakes > lo) & (quakes < hi)) > 0.25
        assert quakes.max() > blasts.max()  # Gutenberg-Richter tail beyond the blasts


# --------------------------------------------------------------------------- physics
def test_radiation_pattern_mean_squares():
    rng = np.random.default_rng(1)
    azimuth = rng.uniform(0, 360, 200_000)
    takeoff = np.degrees(np.arccos(rng.uniform(-1, 1, 200_000)))  # uniform on the sphere
    strike, dip, rake = 30.0, 60.0, 75.0
    p, sv, sh = physics.radiation_double_couple(strike, dip, rake, azimuth, takeoff)
    assert np.mean(p**2) == pytest.approx(4 / 15, rel=0.02)
    assert np.mean(sv**2 + sh**2) == pytest.approx(2 / 5, rel=0.02)
    # Cross-check with the moment tensor n d^T + d n^T (x north, y east, z down).
    s, d, r = np.radians([strike, dip, rake])
    normal = np.array([-np.sin(d) * np.sin(s), np.sin(d) * np.cos(s), -np.cos(d)])
    slip = np.array(
        [
            np.cos(r) * np.cos(s) + np.sin(r) * np.cos(d) * np.sin(s),
            np.cos(r) * np.sin(s) - np.sin(r) * np.cos(d) * np.cos(s),
            -np.sin(r) * np.sin(d),
        ]
    )
    tensor = np.outer(normal, slip) + np.outer(slip, normal)
    phi, i = np.radians(azimuth[:50]), np.radians(takeoff[:50])
    ray = np.stack([np.sin(i) * np.cos(phi), np.sin(i) * np.sin(phi), np.cos(i)])
    e_sv = np.stack([np.cos(i) * np.cos(phi), np.cos(i) * np.sin(phi), -np.sin(i)])
    e_sh = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])
    traction = tensor @ ray
    np.testing.assert_allclose(p[:50], (ray * traction).sum(0), atol=1e-12)
    np.testing.assert_allclose(sv[:50], (e_sv * traction).sum(0), atol=1e-12)
    np.testing.assert_allclose(sh[:50], (e_sh * traction).sum(0), atol=1e-12)
    # Vertical strike-slip: no P radiation straight down, maximum at 45 deg off strike.
    p0, _, _ = physics.radiation_double_couple(0.0, 90.0, 0.0, np.array([45.0, 0.0]), np.array([90.0, 0.0]))
    assert p0[0] == pytest.approx(1.0) and p0[1] == pytest.approx(0.0, abs=1e-12)


def test_ripple_fire_scalloping():
    fs, n = 100.0, 10_000
    delay, shots = 0.025, 8
    times = np.arange(shots) * delay
    spec = physics.ripple_fire_spectrum(times, np.ones(shots), n, fs, oversample=20)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    assert abs(spec[0]) == pytest.approx(1.0)
    null = int(round(1 / (shots * delay) / (fs / n)))  # 5 Hz: first null of the comb
    assert abs(spec[null]) < 1e-6
    peak = int(round(1 / delay / (fs / n)))  # 40 Hz: all shots in phase again
    assert abs(spec[peak]) == pytest.approx(1.0, abs=1e-6)
    # Regular comb: |sum| = |sin(pi f N d) / (N sin(pi f d))| everywhere.
    k = np.arange(1, peak - 1)
    expected = np.abs(np.sin(np.pi * freqs[k] * shots * delay) / (shots * np.sin(np.pi * freqs[k] * delay)))
    np.testing.assert_allclose(np.abs(spec[k]), expected, atol=2e-6)  # float32 FFT


def test_travel_times_are_consistent():
    for spec in REGIONS.values():
        dist = np.linspace(1.0, 300.0, 600)
        for depth in (0.1, 8.0):
            t_p, p_p, takeoff, incidence = physics.travel_times(spec.crust, dist, depth, "P")
            t_s, _, _, _ = physics.travel_times(spec.crust, dist, depth, "S")
            assert np.all(np.diff(t_p) > 0) and np.all(t_s > t_p)
            assert np.all((takeoff >= 0) & (takeoff <= 180)) and np.all(incidence < 90)
            # Far out the ray dives: dt/dx equals the ray parameter.
            numeric = np.gradient(t_p, dist)
            # (skipping points next to a layer boundary, where p jumps)
            smooth = (dist > 100) & (np.abs(np.gradient(p_p)) < 1e-12)
            assert smooth.sum() > 100
            np.testing.assert_allclose(numeric[smooth], p_p[smooth], rtol=0.02)
        # Apparent velocities between crustal P and mantle values.
        assert 4.5 < 300.0 / physics.travel_times(spec.crust, np.array([300.0]), 5.0, "P")[0][0] < 8.5


def test_brune_corner_frequency_scaling():
    f1 = physics.brune_corner_hz(physics.moment_from_magnitude(1.0), 3.0, 3.5)
    f3 = physics.brune_corner_hz(physics.moment_from_magnitude(3.0), 3.0, 3.5)
    assert f1 / f3 == pytest.approx(10.0, rel=1e-6)  # fc ~ M0^(-1/3) = 10^(-0.5 Mw)
    assert 2.0 < f3 < 15.0


def _log_sp_ratio(region: str, n_events: int) -> tuple[list[float], list[float]]:
    """Mean 3-component log10 S/P rms amplitude ratio (3-12 Hz) per event with SNR > 3."""
    from scipy import signal

    spec = REGIONS[region]
    network = build_network(spec, 0)
    grid = build_grid(spec, network)
    fs = spec.sampling_rate_hz
    sos = signal.butter(4, [3.0, 12.0], btype="bandpass", fs=fs, output="sos")
    ratios: dict[bool, list[float]] = {False: [], True: []}
    for i in range(n_events):
        event = sample_event(spec, 0, i)
        counts = synthesize_counts(grid, event, waveform_rng(spec, 0, i))
        x = signal.sosfiltfilt(sos, counts.astype(float), axis=-1)
        power = (x**2).sum(axis=1)
        dist = np.hypot(network.east_km - event.east_km, network.north_km - event.north_km)
        t_p = physics.travel_times(spec.crust, dist, event.depth_km, "P")[0] + spec.pre_origin_s
        t_s = physics.travel_times(spec.crust, dist, event.depth_km, "S")[0] + spec.pre_origin_s
        values = []
        for k in range(network.n_stations):
            p0, s0 = int(t_p[k] * fs), int(t_s[k] * fs)
            p1 = p0 + max(int(0.5 * fs), min(int(2.0 * fs), int(0.9 * (s0 - p0))))
            noise = power[k, p0 - int(8 * fs) : p0 - int(fs)].mean()
            p_pow, s_pow = power[k, p0:p1].mean(), power[k, s0 : s0 + int(2.5 * fs)].mean()
            if p_pow > 4 * noise:
                values.append(0.5 * np.log10(s_pow / p_pow))
        if values:
            ratios[event.is_blast].append(float(np.mean(values)))
    return ratios[False], ratios[True]


@pytest.mark.parametrize("region", ["alpine", "basin"])
def test_s_to_p_ratio_higher_for_earthquakes(region):
    quakes, blasts = _log_sp_ratio(region, 36)
    assert len(quakes) >= 4 and len(blasts) >= 4
    assert np.mean(quakes) > np.mean(blasts) + 0.15
    # ... but the classes overlap: no clean separation on this one feature.
    assert min(quakes) < max(blasts)


def test_rg_only_for_shallow_sources_and_decays_with_distance():
    from raydisc.synthetic.waveforms import _phases

    spec = REGIONS["alpine"]
    network = build_network(spec, 0)
    grid = build_grid(spec, network)
    blast = next(e for e in _events("alpine", 50) if e.is_blast)
    deep = dataclasses.replace(next(e for e in _events("alpine", 50) if not e.is_blast), depth_km=10.0)
    assert len(_phases(grid, blast, np.random.default_rng(0))) == 3  # P, S, Rg
    assert len(_phases(grid, deep, np.random.default_rng(0))) == 2
    rg = _phases(grid, blast, np.random.default_rng(0))[2]
    dist = np.hypot(network.east_km - blast.east_km, network.north_km - blast.north_km)
    near, far = np.argmin(dist), np.argmax(dist)
    f_index = np.searchsorted(grid.freqs, 1.5)
    level = np.linalg.norm(rg.direct, axis=1) / network.site_amplification * np.exp(rg.log_amp[:, f_index])
    assert level[near] > 10 * level[far]
    # Rg is slower than S.
    t_s = physics.travel_times(spec.crust, dist, blast.depth_km, "S")[0] + spec.pre_origin_s
    assert np.all(rg.arrival_s[dist > 5] > t_s[dist > 5])


def test_noise_and_clipping_in_counts():
    spec = REGIONS["alpine"]
    network = build_network(spec, 0)
    grid = build_grid(spec, network)
    fs = spec.sampling_rate_hz
    event = sample_event(spec, 0, 0)
    counts = synthesize_counts(grid, event, waveform_rng(spec, 0, 0))
    assert counts.shape == (network.n_stations, 3, grid.n_samples) and counts.dtype == np.int32
    pre_noise = counts[:, :, : int(10 * fs)].std(axis=-1)
    assert np.all(pre_noise > 3)  # ambient noise spans several counts: no dead channels
    # A large event right under a station clips at the 24-bit full scale.
    k = 0
    big = dataclasses.replace(
        event, magnitude=4.5, east_km=float(network.east_km[k]) + 1.0, north_km=float(network.north_km[k]), depth_km=4.0
    )
    clipped = synthesize_counts(grid, big, waveform_rng(spec, 0, 0))
    assert clipped[k].max() == 2**23 - 1 or clipped[k].min() == -(2**23)
    assert np.abs(counts).max() < 2**23 - 1  # the ordinary event does not


# --------------------------------------------------------------------- object store
def test_generate_to_object_store(s3_bucket, tmp_path):
    from raydisc.storage import read_bytes

    root = f"{s3_bucket}/archive"
    summary = generate_archive(root, regions=["craton"], events_per_region=2, seed=0)
    assert summary["craton"]["events"] == 2
    generate_archive(str(tmp_path), regions=["craton"], events_per_region=2, seed=0)
    for rel in ("catalog.xml", "inventory.xml", "truth.csv", "waveforms/craton-000001.mseed"):
        assert read_bytes(f"{root}/craton/{rel}") == (tmp_path / "craton" / rel).read_bytes()
    assert layout.list_regions(root) == ["craton"]
    assert read_bytes(stations_uri(root, "craton")) == (tmp_path / "craton" / "stations.csv").read_bytes()
    stream = read(io.BytesIO(read_bytes(layout.waveform_uri(root, "craton", "craton-000000"))))
    assert {tr.id for tr in stream} == _channel_ids(_stations(str(tmp_path), "craton"), "CR")


def test_streamed_catalog_equals_obspy_catalog(tmp_path):
    from obspy.core.event import Catalog

    from raydisc.synthetic.generate import build_event, write_catalog

    spec = REGIONS["basin"]
    network = build_network(spec, 0)
    events = [sample_event(spec, 0, i) for i in range(5)]
    uri = str(tmp_path / "catalog.xml")
    write_catalog(uri, spec, network, events, seed=0, chunk=2)  # batches of 2, 2, 1
    streamed = read_events(uri)
    direct = Catalog(events=[build_event(spec, network, e) for e in events])
    assert len(streamed) == 5
    assert str(streamed.resource_id) == f"{layout.RESOURCE_ID_PREFIX}basin/catalog"
    for a, b in zip(streamed, direct):
        assert a == b


# ------------------------------------------------------------- textbook regions frozen
#: SHA-256 of the files of a 3-event alpine + basin archive (seeds 0 and 7) written by
#: the generator before recording options existed: the default RecordingSpec must
#: keep writing exactly these bytes.
FROZEN_SHA256 = {
    "s0/alpine/catalog.xml": "37f6f8da77ff32d6e0fd119a37c3e06baef527fbdaa74b3d14df956fd4b3a4ae",
    "s0/alpine/inventory.xml": "5560aae783444511fe1715726731986fead9165aa27376543c93039684a91339",
    "s0/alpine/truth.csv": "3b89d4ddb3ad4379a403982e0f95302618fbd74a08804c9a073fb19d1e3876ee",
    "s0/alpine/waveforms/alpine-000000.mseed": "fbb3b9138cc972c8c12c2cc9ff80ad1677f51b6bf4ba81c7f818ce212bee271d",
    "s0/alpine/waveforms/alpine-000001.mseed": "451a14d4a4d4f3980e51f81ff0aa1aa4665b8661d3e29d3c3506d257912f0d5a",
    "s0/alpine/waveforms/alpine-000002.mseed": "c9b17ac319ff1753c51c95c1b78294fb49c31843711cf12827bfdd7de29b72d3",
    "s0/basin/catalog.xml": "b7c7285dd497ff22cedc83bdf291ee3d0533cbec62698fc36c800218069e3164",
    "s0/basin/inventory.xml": "bea45f77bc31e875037fc967bc0b39a25607541d359addfba3f864bf2f52e0cf",
    "s0/basin/truth.csv": "ceebe7856e8fed179bc26dbbb278bb9ddf454a6f3086b2e428e7062c98414039",
    "s0/basin/waveforms/basin-000000.mseed": "36c11b66155180e8d5feee3a3af87ede5038636e69b8fe4997658bd5bc2c83db",
    "s0/basin/waveforms/basin-000001.mseed": "1e1f905d4fd1f2bbb785f70931b1fef723de538bcd864b17c0ef8b6920e3c1cf",
    "s0/basin/waveforms/basin-000002.mseed": "b7e782d1c1ad95fea9043b9b28f299fb002bfd9ed3e7ad28bb9827748b3e29d8",
    "s7/alpine/catalog.xml": "0ec24372f3e8efe5d1303f7eba03c20f1b26888b5f66cd66c30afaf9a5c022b0",
    "s7/alpine/inventory.xml": "4d79f794333da385b7396fd4910df1e2223442dd959647a063fdbb33935073b1",
    "s7/alpine/truth.csv": "7b84d6dd27f31fb7e416f7a394863f1fb52408d1547da6e98b3cc52d3db923da",
    "s7/alpine/waveforms/alpine-000000.mseed": "9adea237f30c1322c32ca307c4f88ac9381f4906ebac8a198e1c1ff4d73708d4",
    "s7/alpine/waveforms/alpine-000001.mseed": "84e47fdff1ea00f3290a6e43425a94f4cad4e5d3e2733470cfbed17e0bda6fd0",
    "s7/alpine/waveforms/alpine-000002.mseed": "b1f79da9084a28b5e1e1acbd51b1236a733eb3b36f59f7414b4c0694d231eaf2",
    "s7/basin/catalog.xml": "0158138f87670a9714de5877b8ca37f1707e3b2ef46319a737c6adfaf4ea75fe",
    "s7/basin/inventory.xml": "ff9997a382f5b35dadd2ce9132fe1ff26ccf9546967c5f40e531466b7907402d",
    "s7/basin/truth.csv": "d671bbbb5192a88d3681dbfa5f9e41ceeadf1d45ab7ae955d211d906e2eab97f",
    "s7/basin/waveforms/basin-000000.mseed": "edc99ba96c3df71846f255e7fcbf48b3417547d3078adfd873914c105fb81a17",
    "s7/basin/waveforms/basin-000001.mseed": "710568a51a87fe4dfb7a02377f3baec1d9874639f4f762f92010b6e8e833831c",
    "s7/basin/waveforms/basin-000002.mseed": "ec2200173dc631a9be0a30c848d02013c3016953724ab8072632513e750f7c62",
}


def test_textbook_regions_are_byte_identical_to_before_recording_options(tmp_path):
    for seed in (0, 7):
        root = tmp_path / f"s{seed}"
        generate_archive(str(root), regions=["alpine", "basin"], events_per_region=3, seed=seed)
        written = {
            f"s{seed}/{key}": hashlib.sha256(data).hexdigest()
            for key, data in _files(root).items()
            if not key.endswith("stations.csv")  # new file beside the old ones
        }
        assert written == {k: v for k, v in FROZEN_SHA256.items() if k.startswith(f"s{seed}/")}


# --------------------------------------------------------------------- recording plan
def test_band_codes_follow_rate_and_instrument():
    short, broad = REGIONS["craton"].instrument, REGIONS["basin"].instrument
    assert corner_period_s(short) == pytest.approx(0.5) and corner_period_s(REGIONS["alpine"].instrument) == pytest.approx(1.0)
    assert corner_period_s(broad) > 100
    assert [band_code(r, short) for r in (500, 250, 200, 100, 80, 50, 20, 10)] == list("DDEEESSS")
    assert [band_code(r, broad) for r in (500, 100, 40)] == list("CHB")
    with pytest.raises(ValueError):
        band_code(5.0, short)
    # The textbook regions' declared codes are the derived ones.
    for name in COMPLETE:
        spec = REGIONS[name]
        assert band_code(spec.sampling_rate_hz, spec.instrument) == spec.instrument.band_code


def test_apportion_gives_exact_mixes():
    assert apportion((0.7, 0.2, 0.1), 10).tolist() == [7, 2, 1]
    assert apportion((1.0, 1.0, 4.0, 2.0, 1.0, 1.0), 10).tolist() == [1, 1, 4, 2, 1, 1]
    for n in range(1, 30):
        assert apportion((0.6, 0.3, 0.1), n).sum() == n


def test_recording_plan_is_keyed_and_leaves_the_rest_alone():
    spec = REGIONS["craton"]
    network = build_network(spec, 3)
    plan = build_plan(spec, network, 3)
    assert plan == build_plan(spec, build_network(spec, 3), 3)
    assert plan != build_plan(spec, build_network(spec, 4), 4)
    # Switching one option leaves every other draw in place.
    ne = dataclasses.replace(spec, recording=dataclasses.replace(spec.recording, horizontal_codes="NE"))
    other = build_plan(ne, build_network(ne, 3), 3)
    assert [(s.components, s.primary.sampling_rate_hz, s.defects) for s in plan] == [
        (s.components, s.primary.sampling_rate_hz, s.defects) for s in other
    ]
    assert {c.code[-1] for s in other for c in s.primary.channels} <= set("ZNE")
    # The network does not depend on the recording.
    np.testing.assert_array_equal(build_network(ne, 3).east_km, network.east_km)


def test_recording_spec_validation():
    with pytest.raises(ValueError, match="ordered subset"):
        RecordingSpec(component_sets=("NZ",), component_weights=(1.0,))
    with pytest.raises(ValueError, match="equally long"):
        RecordingSpec(component_sets=("Z", "ZNE"), component_weights=(1.0,))
    with pytest.raises(ValueError, match="horizontal_codes"):
        RecordingSpec(horizontal_codes="XY")
    with pytest.raises(ValueError, match="corrupt"):
        RecordingSpec(corrupt_files=("shredded",))
    with pytest.raises(ValueError, match="dual_sensor_instrument"):
        RecordingSpec(dual_sensor_stations=1)
    spec = REGIONS["basin"]
    too_many = dataclasses.replace(spec, recording=RecordingSpec(no_response_stations=spec.network.n_stations + 1))
    with pytest.raises(ValueError, match="only"):
        build_plan(too_many, build_network(too_many, 0), 0)
    odd_rate = dataclasses.replace(spec, recording=RecordingSpec(sampling_rates_hz=(33.3,)))
    with pytest.raises(ValueError, match="rational"):
        build_plan(odd_rate, build_network(odd_rate, 0), 0)


def test_generate_archive_with_specs(tmp_path):
    spec = dataclasses.replace(REGIONS["basin"], name="b2", recording=RecordingSpec(picks=False))
    summary = generate_archive(str(tmp_path), specs={"b2": spec}, events_per_region=1)
    assert list(summary) == ["b2"] and layout.list_regions(str(tmp_path)) == ["b2"]
    assert read_events(layout.catalog_uri(str(tmp_path), "b2"))[0].picks == []
    with pytest.raises(ValueError, match="key must be"):
        generate_archive(str(tmp_path), specs={"other": spec}, events_per_region=1)


# ---------------------------------------------------------------- craton: field-like
def test_craton_records_like_a_field_network(archive):
    root, _ = archive
    spec = REGIONS["craton"]
    rows = _stations(root, "craton")
    assert tuple(rows[0]) == STATION_COLUMNS
    assert len(rows) == spec.network.n_stations == 10  # one sensor per station
    assert Counter(r["components"] for r in rows) == {"Z": 7, "ZNE": 2, "ZN": 1}
    assert Counter(float(r["sampling_rate_hz"]) for r in rows) == {20: 1, 50: 1, 100: 4, 200: 2, 250: 1, 500: 1}
    assert Counter(r["defects"] for r in rows) == {"": 8, "sensitivity_only": 1, "missing_from_inventory": 1}
    for r in rows:
        rate = float(r["sampling_rate_hz"])
        assert {c[0] for c in r["channels"].split()} == {band_code(rate, spec.instrument)}
        assert [c[-1] for c in r["channels"].split()] == ["Z", "1", "2"][: len(r["components"])]
        assert (r["azimuth_1"] != "") == (r["components"] != "Z")
    # Catalog without picks (checked in test_catalog_round_trip); no corrupt files.
    assert tuple(_truth(root, "craton")[0]) == TRUTH_COLUMNS
    ids = _channel_ids(rows, "CR")
    rate_of = {f"CR.{r['station']}.{r['location']}.{c}": float(r["sampling_rate_hz"]) for r in rows for c in r["channels"].split()}
    for row in _truth(root, "craton"):
        stream = read(layout.waveform_uri(root, "craton", row["event_id"]))
        assert {tr.id for tr in stream} == ids
        origin = UTCDateTime(row["origin_time"])
        for tr in stream:
            assert tr.stats.sampling_rate == rate_of[tr.id]
            assert tr.data.dtype == np.int32 and tr.stats.mseed.encoding == "STEIM2"
            assert tr.stats.starttime <= origin - 29.9 and tr.stats.endtime >= origin + 149.9
            assert 1 < tr.data.std() and np.abs(tr.data).max() < 2**23
    # StationXML: readable by ObsPy; one station absent, one with a bare sensitivity.
    inventory = read_inventory(layout.inventory_uri(root, "craton"))
    in_xml = {s.code: s for s in inventory[0]}
    for r in rows:
        if r["in_inventory"] == "0":
            assert r["station"] not in in_xml
            continue
        station = in_xml[r["station"]]
        assert sorted(c.code for c in station) == sorted(r["channels"].split())
        for channel in station:
            assert channel.sample_rate == float(r["sampling_rate_hz"])
            response = channel.response
            assert response.instrument_sensitivity.value == pytest.approx(spec.instrument.sensitivity_counts_per_m_s)
            assert len(response.response_stages) == (0 if r["response"] == "sensitivity" else 2)


def test_numbered_horizontals_rotate_back_to_ne(tmp_path):
    """ObsPy's rotation with the written azimuths recovers the N/E motion that a N/E
    network would have recorded (same seed), to integer rounding."""
    spec = REGIONS["craton"]
    ne = dataclasses.replace(spec, recording=dataclasses.replace(spec.recording, horizontal_codes="NE"))
    generate_archive(str(tmp_path / "12"), regions=["craton"], events_per_region=2, seed=0)
    generate_archive(str(tmp_path / "ne"), specs={"craton": ne}, events_per_region=2, seed=0)
    inventory = read_inventory(layout.inventory_uri(str(tmp_path / "12"), "craton"))
    three = [r for r in _stations(str(tmp_path / "12"), "craton") if r["components"] == "ZNE" and r["in_inventory"] == "1"]
    assert three
    for r in three:
        theta = float(r["azimuth_1"])
        one, two = (inventory.select(station=r["station"], channel=f"??{c}")[0][0][0] for c in "12")
        assert (one.azimuth, one.dip, two.dip) == (theta, 0.0, 0.0)
        assert two.azimuth == pytest.approx((theta + 90) % 360)
    for i in range(2):
        rotated = read(layout.waveform_uri(str(tmp_path / "12"), "craton", f"craton-{i:06d}"))
        reference = read(layout.waveform_uri(str(tmp_path / "ne"), "craton", f"craton-{i:06d}"))
        for r in three:
            st = rotated.select(station=r["station"]).rotate("->ZNE", inventory=inventory)
            for c in "ZNE":
                got = st.select(component=c)[0].data
                want = reference.select(station=r["station"], component=c)[0].data
                assert np.abs(want).max() > 30  # a meaningful comparison
                np.testing.assert_allclose(got, want, atol=1.25)  # two roundings to counts


def test_station_rates_are_band_limited_resamplings(tmp_path):
    """Each station's trace, band-passed 1-4 Hz and brought to 20 Hz, equals that of
    the same station recorded at the synthesis rate."""
    from fractions import Fraction

    from scipy import signal

    spec = REGIONS["craton"]
    flat = dataclasses.replace(spec, recording=dataclasses.replace(spec.recording, sampling_rates_hz=(), sampling_rate_weights=()))
    generate_archive(str(tmp_path / "mixed"), regions=["craton"], events_per_region=1, seed=0)
    generate_archive(str(tmp_path / "flat"), specs={"craton": flat}, events_per_region=1, seed=0)
    mixed = read(layout.waveform_uri(str(tmp_path / "mixed"), "craton", "craton-000000"))
    flat_stream = read(layout.waveform_uri(str(tmp_path / "flat"), "craton", "craton-000000"))

    def band(tr) -> np.ndarray:
        fs = tr.stats.sampling_rate
        ratio = Fraction(20.0 / fs).limit_denominator(100)
        x = signal.resample_poly(tr.data.astype(float), ratio.numerator, ratio.denominator)
        return signal.sosfiltfilt(signal.butter(4, [1.0, 4.0], btype="band", fs=20.0, output="sos"), x)

    assert len({tr.stats.sampling_rate for tr in mixed}) == 6
    for tr in mixed.select(component="Z"):
        ref = flat_stream.select(station=tr.stats.station, component="Z")[0]
        assert ref.stats.sampling_rate == 100.0 and ref.stats.starttime == tr.stats.starttime
        a, b = band(tr), band(ref)
        n = min(len(a), len(b))
        a, b = a[40 : n - 40], b[40 : n - 40]
        assert np.std(a - b) < 0.05 * np.std(b), tr.id


# ----------------------------------------------------------------- field-test preset
FIELD_EVENTS = 8


@pytest.fixture(scope="module")
def field_archive(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("field") / "archive")
    spec = field_test_spec(REGIONS["basin"])
    generate_archive(root, specs={"field": spec}, events_per_region=FIELD_EVENTS, seed=0)
    return root, spec


def _field_inventory(root: str):
    """The field StationXML read by ObsPy after dropping the stations without
    coordinates (ObsPy cannot read them); returns (inventory, dropped codes)."""
    tree = etree.parse(layout.inventory_uri(root, "field"))
    blank = [s for s in tree.getroot().iter("{*}Station") if s.find("{*}Latitude") is None]
    for station in blank:
        station.getparent().remove(station)
    return read_inventory(io.BytesIO(etree.tostring(tree))), [s.get("code") for s in blank]


def _by_defect(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for r in rows:
        for d in r["defects"].split():
            out.setdefault(d, r)  # the primary sensor's row comes first
    return out


def test_field_test_preset_switches_everything_on(field_archive):
    root, spec = field_archive
    assert spec.name == "field" and spec.recording == FIELD_TEST and spec.network.code == "FT"
    assert corner_period_s(spec.instrument) < 10  # short period, unlike basin's broadband
    assert spec.crust == REGIONS["basin"].crust and spec.blast_fraction == REGIONS["basin"].blast_fraction
    rows = _stations(root, "field")
    primary = [r for r in rows if r["primary"] == "1"]
    assert len(primary) == spec.network.n_stations == 10
    assert Counter(r["components"] for r in primary) == {"Z": 6, "ZNE": 3, "ZN": 1}
    assert Counter(float(r["sampling_rate_hz"]) for r in primary) == {20: 1, 50: 2, 100: 4, 200: 2, 500: 1}
    defects = [d for r in primary for d in r["defects"].split()]
    assert sorted(defects) == sorted(
        ["missing_from_inventory", "no_response", "sensitivity_only", "no_coordinates", "epoch_gap", "dual_sensor"]
    )
    assert all(len(r["defects"].split()) <= 1 for r in primary)  # distinct stations
    truth = _truth(root, "field")
    assert tuple(truth[0]) == TRUTH_COLUMNS + (WAVEFORM_FILE_COLUMN,)
    assert Counter(r[WAVEFORM_FILE_COLUMN] for r in truth) == {"ok": FIELD_EVENTS - 1, "garbled": 1}


def test_field_waveforms_match_the_plan_and_one_file_is_garbled(field_archive):
    root, spec = field_archive
    rows = _stations(root, "field")
    ids = _channel_ids(rows, "FT")
    rate_of = {f"FT.{r['station']}.{r['location']}.{c}": float(r["sampling_rate_hz"]) for r in rows for c in r["channels"].split()}
    for row in _truth(root, "field"):
        uri = layout.waveform_uri(root, "field", row["event_id"])
        if row[WAVEFORM_FILE_COLUMN] == "garbled":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ObsPy complains of undecodable codes first
                with pytest.raises(Exception):
                    read(uri)
                with pytest.raises(Exception):
                    read(uri, format="MSEED")
            continue
        stream = read(uri)
        assert {tr.id for tr in stream} == ids  # stations missing from the StationXML record too
        origin = UTCDateTime(row["origin_time"])
        for tr in stream:
            rate = rate_of[tr.id]
            assert tr.stats.sampling_rate == rate and tr.data.dtype == np.int32
            instrument = REGIONS["basin"].instrument if tr.stats.location == "00" else spec.instrument
            assert tr.stats.channel[:2] == band_code(rate, instrument) + "H"
            assert tr.stats.starttime <= origin - 29.9 and tr.stats.endtime >= origin + 149.9
    for r in rows:
        letters = [c[-1] for c in r["channels"].split()]
        assert letters == (["Z", "1", "2"][: len(r["components"])] if r["primary"] == "1" else ["Z", "N", "E"])


def test_field_catalog_has_no_picks(field_archive):
    root, _ = field_archive
    catalog = read_events(layout.catalog_uri(root, "field"))
    assert len(catalog) == FIELD_EVENTS
    for event in catalog:
        assert event.picks == [] and event.origins[0].arrivals == []
        assert event.event_type in (EARTHQUAKE, QUARRY_BLAST)
        assert event.magnitudes[0].mag is not None and event.origins[0].latitude is not None


def test_field_stationxml_defects(field_archive):
    root, spec = field_archive
    rows = _stations(root, "field")
    defect = _by_defect(rows)
    # A station without coordinates makes the whole file unreadable for ObsPy.
    with pytest.raises(TypeError):
        read_inventory(layout.inventory_uri(root, "field"))
    tree = etree.parse(layout.inventory_uri(root, "field"))
    for station in tree.getroot().iter("{*}Station"):
        lat_lon = list(station.iter("{*}Latitude", "{*}Longitude"))
        if station.get("code") == defect["no_coordinates"]["station"]:
            assert lat_lon == [] and station.find("{*}Elevation") is not None
        else:
            assert len(lat_lon) == 2 * (1 + len(station.findall("{*}Channel")))
    inventory, dropped = _field_inventory(root)
    assert dropped == [defect["no_coordinates"]["station"]]
    stations = {s.code: s for s in inventory[0]}
    assert defect["missing_from_inventory"]["station"] not in stations
    assert len(stations) == spec.network.n_stations - 2
    sensitivity = spec.instrument.sensitivity_counts_per_m_s
    for channel in stations[defect["sensitivity_only"]["station"]]:
        assert channel.response.response_stages == []
        assert channel.response.instrument_sensitivity.value == pytest.approx(sensitivity)
    assert all(c.response is None for c in stations[defect["no_response"]["station"]])
    # Two epochs per channel with a gap, which covers some events.
    gap_row = defect["epoch_gap"]
    gap = UTCDateTime(gap_row["epoch_gap_start"]), UTCDateTime(gap_row["epoch_gap_end"])
    gap_station = stations[gap_row["station"]]
    spec_start = UTCDateTime(spec.catalog.start) - 365 * 86400  # the stations' start date
    codes = gap_row["channels"].split()
    assert sorted(c.code for c in gap_station) == sorted(codes * 2)
    assert sorted((str(c.start_date), str(c.end_date)) for c in gap_station) == sorted(
        [(str(spec_start), str(gap[0])), (str(gap[1]), "None")] * len(codes)
    )
    origins = [UTCDateTime(r["origin_time"]) for r in _truth(root, "field")]
    in_gap = [t for t in origins if gap[0] < t < gap[1]]
    assert 0 < len(in_gap) < len(origins)
    for t in origins:
        found = inventory.select(station=gap_row["station"], time=t)
        assert (len(found) == 0) == (t in in_gap)
    # Complete stations: full response; numbered horizontals at theta and theta + 90.
    for r in rows:
        if r["defects"] or r["primary"] != "1":
            continue
        for channel in stations[r["station"]]:
            assert len(channel.response.response_stages) == 2
            if channel.code[-1] in "12":
                theta = float(r["azimuth_1"])
                assert channel.azimuth == pytest.approx((theta + (90 if channel.code[-1] == "2" else 0)) % 360)


def test_field_dual_sensor_station(field_archive):
    """Two location codes: short-period ``10`` and broadband ``00`` (HH? at 100 Hz),
    both in miniSEED and StationXML, recording the same ground velocity."""
    from fractions import Fraction

    from scipy import signal

    root, spec = field_archive
    rows = [r for r in _stations(root, "field") if "dual_sensor" in r["defects"]]
    assert [(r["location"], r["primary"]) for r in rows] == [("10", "1"), ("00", "0")]
    code = rows[0]["station"]
    assert rows[1]["channels"] == "HHZ HHN HHE" and rows[1]["sampling_rate_hz"] == "100"
    inventory, _ = _field_inventory(root)
    station = inventory.select(station=code)[0][0]
    assert {c.location_code for c in station} == {"10", "00"}
    broadband = [c for c in station if c.location_code == "00"]
    assert [c.code for c in broadband] == ["HHZ", "HHN", "HHE"] and {c.sample_rate for c in broadband} == {100.0}
    assert broadband[0].response.instrument_sensitivity.value == pytest.approx(
        REGIONS["basin"].instrument.sensitivity_counts_per_m_s
    )
    row = next(r for r in _truth(root, "field") if r[WAVEFORM_FILE_COLUMN] == "ok")
    stream = read(layout.waveform_uri(root, "field", row["event_id"])).select(station=code, component="Z")
    assert sorted(tr.stats.location for tr in stream) == ["00", "10"]

    def velocity_20hz(tr) -> np.ndarray:
        tr = tr.copy()
        fs = tr.stats.sampling_rate
        tr.remove_response(inventory=inventory, output="VEL", pre_filt=(0.3, 0.5, 0.4 * min(fs, 20.0), 0.45 * min(fs, 20.0)))
        ratio = Fraction(20.0 / fs).limit_denominator(100)
        x = signal.resample_poly(tr.data, ratio.numerator, ratio.denominator)
        return signal.sosfiltfilt(signal.butter(4, [1.0, 4.0], btype="band", fs=20.0, output="sos"), x)[200:-200]

    a, b = (velocity_20hz(stream.select(location=loc)[0]) for loc in ("10", "00"))
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert np.std(a) == pytest.approx(np.std(b), rel=0.05)


def test_truncated_files_read_partially(tmp_path):
    spec = field_test_spec(REGIONS["basin"])
    cut = dataclasses.replace(spec, recording=dataclasses.replace(spec.recording, corrupt_files=("truncated",)))
    whole = dataclasses.replace(spec, recording=dataclasses.replace(spec.recording, corrupt_files=()))
    generate_archive(str(tmp_path / "cut"), specs={"field": cut}, events_per_region=2, seed=0)
    generate_archive(str(tmp_path / "whole"), specs={"field": whole}, events_per_region=2, seed=0)
    (row,) = [r for r in _truth(str(tmp_path / "cut"), "field") if r[WAVEFORM_FILE_COLUMN] == "truncated"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy may warn of the incomplete record
        partial = read(layout.waveform_uri(str(tmp_path / "cut"), "field", row["event_id"]))
    full = read(layout.waveform_uri(str(tmp_path / "whole"), "field", row["event_id"]))
    assert 0 < sum(tr.stats.npts for tr in partial) < sum(tr.stats.npts for tr in full)
    for tr in partial:  # what is read is the start of the true recording
        ref = full.select(id=tr.id)[0]
        np.testing.assert_array_equal(tr.data, ref.data[: tr.stats.npts])


def test_cli_generate_field_test(tmp_path):
    from raydisc.synthetic.cli import add_generate_arguments, run_generate
    from raydisc.config import ConfigError

    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    root = str(tmp_path / "archive")
    args = parser.parse_args([root, "--regions", "craton", "--events", "2", "--field-test", "ft"])
    assert run_generate(args) == 0
    assert layout.list_regions(root) == ["craton", "ft"]
    assert {r["station"][:3] for r in _stations(root, "ft")} == {"FLD"}
    for bad in ("basin", "a/b"):
        with pytest.raises(ConfigError):
            run_generate(parser.parse_args([root, "--events", "1", "--field-test", bad]))
