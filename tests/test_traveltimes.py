"""Predicted first-P travel times: the interpolated table against direct TauP calls."""
from __future__ import annotations

import numpy as np
import pytest
from obspy.geodetics import kilometers2degrees
from obspy.taup import TauPyModel
from obspy.taup.taup_create import build_taup_model

from raydisc.data.traveltimes import builtin_models, first_p_travel_time, predicted_p_time

# Two-layer crust (5.0 and 6.5 km/s, Conrad at 15 km, Moho at 35 km) over a graded mantle.
SIMPLE_TVEL = """simple two-layer crust - P
simple two-layer crust - S
   0.000   5.0000   2.9000   2.6000
  15.000   5.0000   2.9000   2.6000
  15.000   6.5000   3.7500   2.9000
  35.000   6.5000   3.7500   2.9000
  35.000   8.0000   4.5000   3.3000
6371.000  11.0000   6.0000   5.0000
"""
R_EARTH_KM = 6371.0


def direct_taup(model: TauPyModel, depth_km: float, distance_km: float) -> float:
    return model.get_travel_times(depth_km, kilometers2degrees(distance_km), ["ttp"])[0].time


@pytest.fixture(scope="module")
def iasp91():
    return TauPyModel("iasp91")


@pytest.fixture(scope="module")
def simple_tvel(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "simple.tvel"
    path.write_text(SIMPLE_TVEL)
    return path


def test_matches_direct_taup_at_random_points(iasp91):
    rng = np.random.default_rng(42)
    depth = rng.uniform(0.0, 60.0, 160)
    dist = rng.uniform(0.0, 1000.0, 160)
    dist[:30] = rng.uniform(0.0, 10.0, 30)       # near the epicentre, where the up-going p is first
    dist[30:90] = rng.uniform(80.0, 250.0, 60)   # where Pn overtakes the crustal phases
    dist[90:100] = 0.0
    depth[100:110] = [0.0, 0.0, 20.0, 20.0, 35.0, 35.0, 34.9, 35.1, 19.9, 20.1]  # iasp91 discontinuities
    got = first_p_travel_time("iasp91", depth, dist)
    want = np.array([direct_taup(iasp91, z, x) for z, x in zip(depth, dist)])
    assert np.max(np.abs(got - want)) < 0.05


def test_outside_the_table_falls_back_to_exact_times(iasp91):
    depth = np.array([100.0, 600.0, 30.0, 61.0, 10.0])
    dist = np.array([500.0, 5000.0, 15000.0, 300.0, 1600.0])
    want = [direct_taup(iasp91, z, x) for z, x in zip(depth, dist)]
    np.testing.assert_allclose(first_p_travel_time("iasp91", depth, dist), want, atol=0.05)


def test_zero_distance_surface_source_is_zero():
    assert first_p_travel_time("iasp91", 0.0, 0.0) == pytest.approx(0.0, abs=1e-6)


def test_monotonic_in_distance_and_continuous_at_table_edges():
    dist = np.arange(0.0, 2500.0, 0.5)
    for depth in (0.0, 3.3, 15.0, 34.9, 50.0):
        assert np.all(np.diff(first_p_travel_time("iasp91", depth, dist)) > 0)
    edge = first_p_travel_time("iasp91", [60.0, 60.001, 10.0, 10.0], [700.0, 700.0, 1500.0, 1500.001])
    assert edge[1] == pytest.approx(edge[0], abs=0.01) and edge[3] == pytest.approx(edge[2], abs=0.01)


def test_tvel_model_direct_wave_matches_straight_ray(simple_tvel):
    depth, dist = 10.0, np.array([0.0, 5.0, 10.0, 20.0])
    # straight chord from the source (radius R - depth) to the station, in the 5 km/s top layer
    chord = np.sqrt(R_EARTH_KM ** 2 + (R_EARTH_KM - depth) ** 2
                    - 2 * R_EARTH_KM * (R_EARTH_KM - depth) * np.cos(dist / R_EARTH_KM))
    np.testing.assert_allclose(first_p_travel_time(str(simple_tvel), depth, dist), chord / 5.0, rtol=0.01)


def test_tvel_model_matches_direct_taup(simple_tvel, tmp_path):
    build_taup_model(str(simple_tvel), output_folder=str(tmp_path), verbose=False)
    direct = TauPyModel(str(tmp_path / "simple.npz"))
    depth = np.array([0.0, 12.0, 25.0, 40.0, 8.0])
    dist = np.array([50.0, 120.0, 200.0, 700.0, 0.0])
    want = [direct_taup(direct, z, x) for z, x in zip(depth, dist)]
    np.testing.assert_allclose(first_p_travel_time(simple_tvel, depth, dist), want, atol=0.05)


def test_nd_model_file_works(tmp_path):
    lines = SIMPLE_TVEL.splitlines()[2:]
    nd = tmp_path / "simple.nd"
    nd.write_text("\n".join(lines[:4] + ["mantle"] + lines[4:]) + "\n")
    assert first_p_travel_time(str(nd), 10.0, 5.0) == pytest.approx(np.hypot(10.0, 5.0) / 5.0, rel=0.01)


@pytest.mark.parametrize("name", ["iasp92", "no/such/model.tvel", ""])
def test_unknown_model_raises_value_error_naming_it(name):
    with pytest.raises(ValueError, match="iasp91") as info:
        first_p_travel_time(name, 10.0, 100.0)
    assert repr(name) in str(info.value)


def test_unreadable_model_file_raises_value_error(tmp_path):
    bad = tmp_path / "bad.tvel"
    bad.write_text("garbage\nnot a model\n1 2\n")
    with pytest.raises(ValueError, match="bad.tvel"):
        first_p_travel_time(str(bad), 10.0, 100.0)
    other = tmp_path / "model.txt"
    other.write_text(SIMPLE_TVEL)
    with pytest.raises(ValueError, match="model.txt"):
        first_p_travel_time(str(other), 10.0, 100.0)


def test_builtin_names_are_case_insensitive():
    assert {"iasp91", "ak135", "prem"} <= set(builtin_models())
    assert first_p_travel_time("IASP91", 10.0, 100.0) == first_p_travel_time("iasp91", 10.0, 100.0)


def test_nan_and_negative_inputs():
    t = first_p_travel_time("iasp91", [10.0, np.nan, 10.0], [np.nan, 100.0, 100.0])
    assert np.isnan(t[0]) and np.isnan(t[1]) and np.isfinite(t[2])
    # events above sea level have negative catalog depths: treated as surface sources
    assert first_p_travel_time("iasp91", -1.5, 100.0) == first_p_travel_time("iasp91", 0.0, 100.0)
    with pytest.raises(ValueError, match="distance"):
        first_p_travel_time("iasp91", 10.0, [-5.0, 10.0])


def test_scalar_and_broadcast_shapes():
    scalar = first_p_travel_time("iasp91", 10.0, 100.0)
    assert isinstance(scalar, np.ndarray) and scalar.shape == ()
    grid = first_p_travel_time("iasp91", np.array([[0.0], [10.0], [30.0]]), [0.0, 50.0, 100.0, 400.0])
    assert grid.shape == (3, 4)
    assert grid[1, 2] == scalar
    assert first_p_travel_time("iasp91", 10, [100]).shape == (1,)
    # rows beyond the table (deep, far) are filled in place in a 2-D result too
    mixed = first_p_travel_time("iasp91", np.array([[100.0], [5.0]]), [[10.0, 3000.0]])
    np.testing.assert_array_equal(mixed[0], first_p_travel_time("iasp91", 100.0, [10.0, 3000.0]))
    np.testing.assert_array_equal(mixed[1], first_p_travel_time("iasp91", 5.0, [10.0, 3000.0]))


def test_predicted_p_time_adds_origin():
    origin = 1_700_000_000.25
    dist = np.array([10.0, 100.0, 500.0])
    np.testing.assert_allclose(predicted_p_time(origin, 12.0, dist),
                               origin + first_p_travel_time("iasp91", 12.0, dist), rtol=0, atol=1e-6)
