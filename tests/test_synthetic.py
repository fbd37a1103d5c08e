"""Tests of the synthetic multi-region generator (raydisc.synthetic).

Tiny archives (a few events per region) are written once per module; statistical
checks use the event-level sampler or in-memory synthesis, which need no files.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
from obspy import UTCDateTime, read, read_events, read_inventory

from raydisc.data import layout
from raydisc.labels import label_of
from raydisc.synthetic import EARTHQUAKE, QUARRY_BLAST, REGIONS, build_network, generate_archive, sample_event
from raydisc.synthetic import physics
from raydisc.synthetic.events import CLASS_ANCHOR_SPAN, true_type_of, waveform_rng
from raydisc.synthetic.generate import TRUTH_COLUMNS
from raydisc.synthetic.waveforms import build_grid, synthesize_counts

SMALL = {"alpine": 8, "basin": 7, "craton": 6}
EXPECTED_RATES = {"alpine": 200.0, "basin": 100.0, "craton": 50.0}


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


# ------------------------------------------------------------------------ API, files
def test_regions_are_the_three_documented_ones():
    assert list(REGIONS) == ["alpine", "basin", "craton"]
    assert {name: spec.sampling_rate_hz for name, spec in REGIONS.items()} == EXPECTED_RATES
    codes = [spec.network.code for spec in REGIONS.values()]
    assert len(set(codes)) == 3 and all(len(c) == 2 for c in codes)
    assert len({spec.instrument.name for spec in REGIONS.values()}) == 3
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
    for region, spec in REGIONS.items():
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
    for region, spec in REGIONS.items():
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
    stream = read(io.BytesIO(read_bytes(layout.waveform_uri(root, "craton", "craton-000000"))))
    assert len(stream) == 3 * REGIONS["craton"].network.n_stations


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
