"""Noise windows and surface events of the synthetic generator (raydisc.synthetic.classes).

One tiny alpine archive with both new kinds is written per module (real miniSEED,
QuakeML, StationXML); the shares are checked on the event sampler (no waveforms), and
the physics on in-memory synthesis with the ambient noise turned down, so the measured
envelopes and spectra are those of the signals.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from obspy import read, read_events
from scipy import signal

from raydisc.config import PipelineConfig, PreprocessConfig
from raydisc.data import layout
from raydisc.data.catalog import read_catalog
from raydisc.data.inventory import read_stations
from raydisc.data.recordings import cut_recordings_from_stream
from raydisc.synthetic import (EARTHQUAKE, NOT_EXISTING, QUARRY_BLAST, REGIONS, SURFACE_EVENT_TYPES, ClassMix,
                               build_network, generate_archive, sample_any, sample_event)
from raydisc.synthetic.classes import NOISE, SURFACE, event_waveform_rng, kind_of, sample_surface_event
from raydisc.synthetic.events import waveform_rng
from raydisc.synthetic.waveforms import build_grid, synthesize_counts

REGION = "alpine"
SEED = 5
#: Large shares so that 6 events hold every kind: kind_of puts indices 0-5 of alpine
#: seed 5 into noise, surface and earthquake/blast (checked in the archive fixture).
MIX = ClassMix(noise_fraction=0.3, surface_fraction=0.3)
N_EVENTS = 6


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """The default archive and the archive with new kinds, same region, seed and size."""
    base = tmp_path_factory.mktemp("classes")
    roots = {"default": base / "default", "mix": base / "mix"}
    generate_archive(str(roots["default"]), [REGION], events_per_region=N_EVENTS, seed=SEED)
    summary = generate_archive(str(roots["mix"]), [REGION], events_per_region=N_EVENTS, seed=SEED, mix=MIX)
    kinds = {kind_of(REGIONS[REGION], SEED, i, MIX) for i in range(N_EVENTS)}
    assert kinds == {NOISE, SURFACE, None}, kinds  # the fixture holds every kind
    roots["summary"] = summary[REGION]
    return roots


def test_default_archive_has_no_new_types_and_mix_keeps_earthquakes_and_blasts(archives, tmp_path):
    default, mix = archives["default"], archives["mix"]
    types = {str(e.event_type) for e in read_events(str(default / REGION / layout.CATALOG_FILE))}
    assert types <= {EARTHQUAKE, QUARRY_BLAST}
    # A zero mix is the default archive, byte for byte.
    zero = tmp_path / "zero"
    generate_archive(str(zero), [REGION], events_per_region=N_EVENTS, seed=SEED, mix=ClassMix(0.0, 0.0))
    assert _files(zero) == _files(default)
    # The earthquakes and blasts of a mixed archive are the default archive's events.
    catalog = read_events(str(mix / REGION / layout.CATALOG_FILE))
    kept = [layout.event_id_from_resource_id(e.resource_id) for e in catalog
            if str(e.event_type) in (EARTHQUAKE, QUARRY_BLAST)]
    assert 0 < len(kept) < N_EVENTS
    for event_id in kept:
        name = Path(layout.waveform_uri(str(mix), REGION, event_id)).relative_to(mix)
        assert (mix / name).read_bytes() == (default / name).read_bytes(), event_id


def test_same_seed_same_mixed_archive(archives, tmp_path):
    again = tmp_path / "again"
    generate_archive(str(again), [REGION], events_per_region=N_EVENTS, seed=SEED, mix=MIX)
    assert _files(again) == _files(archives["mix"])
    other = tmp_path / "other"
    generate_archive(str(other), [REGION], events_per_region=N_EVENTS, seed=SEED + 1, mix=MIX)
    assert _files(other) != _files(archives["mix"])


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_shares_and_draws_of_the_new_kinds(region):
    spec = REGIONS[region]
    n = 300
    mix = ClassMix(noise_fraction=0.2, surface_fraction=0.1)
    events = [sample_any(spec, SEED, i, mix) for i in range(n)]
    noise = [e for e in events if e.is_noise]
    surface = [e for e in events if e.is_surface]
    # A low-discrepancy sequence: counts within a few events of the requested shares.
    assert abs(len(noise) - 0.2 * n) <= 3 and abs(len(surface) - 0.1 * n) <= 3
    others = [e for e in events if not (e.is_noise or e.is_surface)]
    assert {e.true_type for e in others} <= {EARTHQUAKE, QUARRY_BLAST}
    assert all(e.catalog_type == NOT_EXISTING and math.isnan(e.magnitude) and e.depth_km == 0 for e in noise)
    radius = spec.seismicity.epicentre_radius_km
    assert all(math.hypot(e.east_km, e.north_km) <= radius for e in noise)
    assert {e.true_type for e in surface} <= set(spec.surface.event_types) <= set(SURFACE_EVENT_TYPES)
    s = spec.surface
    for e in surface:
        assert e.depth_km == 0 and s.magnitude_range[0] <= e.magnitude <= s.magnitude_range[1]
        site = min(s.sites, key=lambda x: math.hypot(x.east_km - e.east_km, x.north_km - e.north_km))
        assert site.name == e.slope and math.hypot(site.east_km - e.east_km, site.north_km - e.north_km) < 5 * s.location_sigma_km
        assert s.rise_s[0] <= e.rise_s <= e.duration_s / 2 + 0.01 and s.duration_s[0] <= e.duration_s <= s.duration_s[1]
        if e.true_type == "snow avalanche":
            assert (e.origin_time + spec.utc_offset_h * 3600).month in s.snow_months


def test_options_are_validated():
    for bad in (-0.1, 0.51, float("nan"), "0.2", True):
        with pytest.raises(ValueError, match="noise_fraction"):
            ClassMix(noise_fraction=bad)
    spec = dataclasses.replace(REGIONS[REGION], surface=dataclasses.replace(REGIONS[REGION].surface, sites=()))
    with pytest.raises(ValueError, match="alpine: surface events need slope sites"):
        sample_surface_event(spec, SEED, 0)


def test_catalog_summary_and_recordings_of_the_new_kinds(archives):
    mix = archives["mix"]
    catalog = read_events(str(mix / REGION / layout.CATALOG_FILE))
    by_type: dict[str, int] = {}
    for event in catalog:
        t = str(event.event_type)
        by_type[t] = by_type.get(t, 0) + 1
        if t == NOT_EXISTING or t in SURFACE_EVENT_TYPES:
            assert not event.picks and event.origins[0].depth == 0
            assert bool(event.magnitudes) == (t != NOT_EXISTING)
        else:
            assert event.picks
    summary = archives["summary"]
    assert {t: summary.get(t, 0) for t in by_type} == by_type
    assert set(summary) >= {NOT_EXISTING, *REGIONS[REGION].surface.event_types}


def _rms_ratio(trace, split_s: float) -> float:
    """RMS after ``split_s`` into the trace over RMS before it (both demeaned)."""
    x = trace.data.astype(float)
    k = int(split_s * trace.stats.sampling_rate)
    return float(np.std(x[k:]) / np.std(x[:k]))


def test_noise_windows_hold_only_noise(archives):
    mix = archives["mix"]
    spec = REGIONS[REGION]
    ratios = {}
    for event in read_events(str(mix / REGION / layout.CATALOG_FILE)):
        event_id = layout.event_id_from_resource_id(event.resource_id)
        stream = read(layout.waveform_uri(str(mix), REGION, event_id))
        # Before the origin vs the rest: the whole span a preprocessing window can take.
        ratios[str(event.event_type)] = [_rms_ratio(tr, spec.pre_origin_s - 5.0) for tr in stream.select(component="Z")]
    assert all(0.8 < r < 1.25 for r in ratios[NOT_EXISTING]), ratios[NOT_EXISTING]
    # The measure sees signal: some station of an earthquake or blast stands well above its noise.
    signal_ratios = ratios.get(EARTHQUAKE, []) + ratios.get(QUARRY_BLAST, [])
    assert max(signal_ratios) > 2.0


def _quiet(spec):
    """``spec`` with its ambient noise a thousand times weaker."""
    n = spec.noise
    return dataclasses.replace(spec, noise=dataclasses.replace(
        n, microseism_asd=n.microseism_asd * 1e-3, background_asd=n.background_asd * 1e-3,
        cultural_asd_day=n.cultural_asd_day * 1e-3))


def _measure(z: np.ndarray, fs: float) -> tuple[float, float, float]:
    """(rise time s: onset at 10 % of the peak of the 1-s RMS envelope to its peak,
    duration s above 10 % of the peak, spectral centroid Hz over 0.5-20 Hz)."""
    sos = signal.butter(4, [0.5, 20.0], "bandpass", fs=fs, output="sos")
    y = signal.sosfiltfilt(sos, z - z.mean())
    n = int(fs)
    env = np.sqrt(np.convolve(y**2, np.ones(n) / n, "same"))
    peak = int(env.argmax())
    above = np.flatnonzero(env > 0.1 * env[peak])
    f, p = signal.welch(y, fs=fs, nperseg=int(8 * fs))
    band = (f > 0.5) & (f < 20.0)
    return (peak - above[0]) / fs, (above[-1] - above[0]) / fs, float((f[band] * p[band]).sum() / p[band].sum())


def test_surface_events_are_emergent_long_low_frequency_and_decay_with_distance():
    spec = _quiet(REGIONS[REGION])
    network = build_network(spec, SEED)
    grid = build_grid(spec, network)
    fs = spec.sampling_rate_hz
    quake = next(e for e in (sample_event(spec, SEED, i) for i in range(20)) if e.true_type == EARTHQUAKE)
    for index in range(3):
        surface = sample_surface_event(spec, SEED, index)
        distance = np.hypot(network.east_km - surface.east_km, network.north_km - surface.north_km)
        near, far = int(distance.argmin()), int(distance.argmax())
        # Both 5 km from the nearest station (S - P under 1 s, so an impulsive S stays
        # impulsive in the envelope), the earthquake of like magnitude and shallow.
        place = dict(east_km=float(network.east_km[near] + 3.0), north_km=float(network.north_km[near] + 4.0))
        surface = dataclasses.replace(surface, **place)
        like = dataclasses.replace(quake, magnitude=surface.magnitude, depth_km=2.0, **place)
        counts = synthesize_counts(grid, surface, event_waveform_rng(spec, SEED, surface))
        quake_counts = synthesize_counts(grid, like, waveform_rng(spec, SEED, quake.index))
        distance = np.hypot(network.east_km - surface.east_km, network.north_km - surface.north_km)
        far = int(distance.argmax())
        rise, duration, centroid = _measure(counts[near, 0].astype(float), fs)
        q_rise, q_duration, q_centroid = _measure(quake_counts[near, 0].astype(float), fs)
        assert rise > 2.0 and rise > 1.5 * q_rise, (surface, rise, q_rise)
        assert duration > 15.0 and duration > 2.5 * q_duration, (surface, duration, q_duration)
        assert 1.0 < centroid < 5.0 and centroid < 0.7 * q_centroid, (surface, centroid, q_centroid)
        peak = np.abs(counts[:, 0].astype(float)).max(axis=-1)
        assert peak[near] > 10 * peak[far]


def test_binary_labels_reject_the_new_types_and_noise_windows_cut_at_predicted_p(ray_cluster, archives, tmp_path):
    from raydisc.data.pipeline import run_preprocessing

    mix = archives["mix"]
    out = tmp_path / "shards"
    run_preprocessing(str(mix), str(out), [REGION], pipeline_config=PipelineConfig(events_per_shard=N_EVENTS))
    rejects = pq.read_table(str(out / "_rejects" / REGION)).to_pylist()
    unknown = {r["event_id"] for r in rejects if r["reason"] == "unknown_event_type"}
    catalog = read_catalog(layout.catalog_uri(str(mix), REGION), REGION)
    new = {e.event_id for e in catalog if e.event_type == NOT_EXISTING or e.event_type in SURFACE_EVENT_TYPES}
    assert new and unknown == new
    rows = pq.read_table(str(out / REGION)).column("event_id").to_pylist()
    assert rows and not set(rows) & new
    # A scheme that labels noise windows gets windows at the predicted P arrival.
    stations = read_stations(layout.inventory_uri(str(mix), REGION))
    noise = next(e for e in catalog if e.event_type == NOT_EXISTING)
    assert math.isnan(noise.magnitude) and not noise.picks
    stream = read(layout.waveform_uri(str(mix), REGION, noise.event_id))
    recordings, problems = cut_recordings_from_stream(stream, dataclasses.replace(noise, label=0), stations,
                                                      PreprocessConfig())
    assert len(recordings) == REGIONS[REGION].network.n_stations and not problems
    assert {r.pick_source for r in recordings} == {"predicted"}


def test_generate_command_takes_the_shares(tmp_path, capsys):
    from raydisc.cli import main

    assert main(["generate", str(tmp_path / "x"), "--events", "1", "--noise-fraction", "0.6"]) == 2
    assert "noise_fraction must be a number in [0, 0.5]" in capsys.readouterr().err
    root = tmp_path / "four"
    assert main(["generate", str(root), "--regions", "basin", "--events", "3", "--seed", "2", "--four-class",
                 "--surface-fraction", "0.4"]) == 0
    out = capsys.readouterr().out
    expected = generate_archive(str(tmp_path / "api"), ["basin"], events_per_region=3, seed=2,
                                mix=ClassMix(noise_fraction=0.2, surface_fraction=0.4))["basin"]
    assert "basin      " + "  ".join(f"{k}={v}" for k, v in expected.items()) in out
    assert _files(root) == _files(tmp_path / "api")
    assert "not existing=" in out and "landslide=" in out and "rockslide=" in out
