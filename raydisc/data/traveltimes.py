"""Predicted first-P arrival times from a 1-D Earth model (ObsPy TauP), for stations without a pick.

A direct ``TauPyModel.get_travel_times`` call costs ~10 ms, far too slow per recording in batch
jobs, so each process builds one table per model (:data:`DEPTHS_KM` x :data:`DISTANCES_KM`) on
first use and interpolates it bilinearly (max error ~0.01 s against direct TauP). The public
TauP API takes one distance per call; instead we use its internals (``TauModel.depth_correct``,
``SeismicPhase``, stable through ObsPy 1.x; the tests compare against ``get_travel_times``): one
depth correction per grid depth (~120 in all) samples every branch's curve T(X), which we
evaluate at all grid distances at once with the same tangent (tau-p) estimate TauP starts from
before refining by ray shooting (Buland & Chapman 1983), within ~0.01 s of the refined time.
Build: ~0.8 s for iasp91, so no disk cache.

Points outside the table (deeper than 60 km, farther than 1500 km) are computed exactly the
same way at their own depth, one depth correction (~15 ms) per unique source depth (an event's
stations share it), memoised. Distance is epicentral, along the surface of a spherical Earth, in
km, converted to degrees with :func:`obspy.geodetics.kilometers2degrees` (radius 6371 km); the
short way round is used beyond half the circumference.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import obspy.taup
from obspy.geodetics import kilometers2degrees
from obspy.taup.helper_classes import TauModelError
from obspy.taup.seismic_phase import SeismicPhase
from obspy.taup.tau_model import TauModel
from obspy.taup.taup_create import build_taup_model
from obspy.taup.utils import parse_phase_list

DEFAULT_MODEL = "iasp91"
# TauP's "ttp" list: p, P, Pn, Pdiff, PKP, PKiKP, PKIKP. TauP's "P" already holds the crustal
# arrivals (Pg and PmP are subsets of it) and "p" the direct up-going ray that is first near the
# epicentre, so the minimum over these is the first P-type arrival at every distance.
P_PHASES = tuple(parse_phase_list(["ttp"]))
DIST_STEP_KM = 1.0
DISTANCES_KM = np.arange(0.0, 1500.0 + DIST_STEP_KM / 2, DIST_STEP_KM)
# 0.5 km in depth keeps the error at the kink where Pn overtakes p below ~0.03 s
# (the two branches' depth derivatives differ by up to ~0.15 s/km); a model's own discontinuities
# are added as nodes, because the time is only piecewise smooth in depth across them.
DEPTHS_KM = np.arange(0.0, 60.0 + 0.25, 0.5)


@functools.lru_cache(maxsize=1)
def builtin_models() -> tuple[str, ...]:
    """Names of the velocity models shipped with ObsPy's TauP (``iasp91``, ``ak135``, ``prem``...)."""
    return tuple(sorted(p.stem for p in (Path(obspy.taup.__file__).parent / "data").glob("*.npz")))


def _model_key(model: str) -> tuple:
    """Hashable cache key: a built-in name, or a resolved file path plus its mtime (edits rebuild)."""
    path = Path(str(model)).expanduser()
    if path.is_file():
        if path.suffix.lower() not in (".tvel", ".nd", ".npz"):
            raise ValueError(f"velocity model file {model!r}: expected .tvel, .nd or .npz")
        return ("file", str(path.resolve()), path.stat().st_mtime_ns)
    if str(model).lower() in builtin_models():
        return ("builtin", str(model).lower())
    raise ValueError(f"unknown velocity model {model!r}: not a readable .tvel/.nd/.npz file nor one of "
                     f"TauP's built-in models {', '.join(builtin_models())}")


@functools.lru_cache(maxsize=8)
def _tau_model(key: tuple) -> TauModel:
    # cache=False: TauP's own depth cache would keep all table depths (~MBs each) alive.
    if key[0] == "builtin":
        return TauModel.from_file(key[1], cache=False)
    path = Path(key[1])
    try:
        if path.suffix.lower() == ".npz":
            return TauModel.from_file(str(path), cache=False)
        with tempfile.TemporaryDirectory(prefix="raydisc-taup-") as tmp:
            build_taup_model(str(path), output_folder=tmp, verbose=False)
            return TauModel.from_file(str(Path(tmp) / path.with_suffix(".npz").name), cache=False)
    except Exception as exc:  # TauP raises anything from IndexError to ValueError on a bad file
        raise ValueError(f"cannot read velocity model file {str(path)!r} ({exc}); built-in models: "
                         f"{', '.join(builtin_models())}") from exc


class SourceDepthError(ValueError):
    """The model cannot place a source at this depth (below its planet, or where TauP fails)."""


def _sampled_branches(key: tuple, depth_km: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(distance rad, time s, ray parameter s/rad) samples of every P phase for a source at depth."""
    tau_model = _tau_model(key)
    if depth_km > tau_model.radius_of_planet:
        raise SourceDepthError(f"source depth {depth_km} km is deeper than the model's planet radius")
    try:
        corrected = tau_model.depth_correct(float(depth_km))
    except Exception as exc:  # TauP fails with internal errors near the centre (UnboundLocalError at 6370 km)
        raise SourceDepthError(f"source depth {depth_km} km: TauP cannot place a source there "
                               f"({type(exc).__name__}: {exc})") from exc
    out = []
    for name in P_PHASES:
        try:
            phase = SeismicPhase(name, corrected, 0.0)
        except TauModelError:  # e.g. core phases in a model without a core
            continue
        if len(phase.dist) >= 2:
            out.append((np.asarray(phase.dist), np.asarray(phase.time), np.asarray(phase.ray_param)))
    return out


_branches_memo = functools.lru_cache(maxsize=512)(_sampled_branches)


def _first_arrival(branches, x_rad: np.ndarray) -> np.ndarray:
    """Earliest time (s) over all branches at sorted distances ``x_rad`` (1-D); NaN where none."""
    best = np.full(x_rad.shape, np.inf)
    for d, t, p in branches:
        lo, hi = np.minimum(d[:-1], d[1:]), np.maximum(d[:-1], d[1:])
        i0, i1 = np.searchsorted(x_rad, lo, "left"), np.searchsorted(x_rad, hi, "right")
        n = i1 - i0
        # every (sampled segment, target distance) pair with the target inside the segment
        seg = np.repeat(np.arange(len(n)), n)
        tgt = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(i0, n)
        x = x_rad[tgt]
        # Tangents T_i + p_i (x - X_i) from both ends bound T(x); TauP keeps the lower one on a
        # prograde segment (T concave) and the upper one on a retrograde one (dp/dX > 0).
        th0 = t[seg] + p[seg] * (x - d[seg])
        th1 = t[seg + 1] + p[seg + 1] * (x - d[seg + 1])
        retro = (p[seg] - p[seg + 1]) * (d[seg] - d[seg + 1]) > 0
        np.minimum.at(best, tgt, np.where(retro, np.maximum(th0, th1), np.minimum(th0, th1)))
    best[np.isinf(best)] = np.nan
    return best


def _km_to_rad(distance_km: np.ndarray) -> np.ndarray:
    deg = np.mod(kilometers2degrees(distance_km), 360.0)
    return np.radians(np.where(deg > 180.0, 360.0 - deg, deg))  # the short way round


@functools.lru_cache(maxsize=8)
def _table(key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(depth nodes km, times s of shape (depths, DISTANCES_KM)); built once per model and process."""
    discontinuities = np.asarray(_tau_model(key).s_mod.v_mod.get_discontinuity_depths(), float)
    depths = np.union1d(DEPTHS_KM, discontinuities[(discontinuities > 0) & (discontinuities < DEPTHS_KM[-1])])
    x_rad = _km_to_rad(DISTANCES_KM)
    return depths, np.stack([_first_arrival(_sampled_branches(key, z), x_rad) for z in depths])


def first_p_travel_time(model: str, depth_km, distance_km) -> np.ndarray:
    """Travel time (s after the origin) of the first-arriving P-type phase at the surface.

    ``model``: a TauP built-in name (see :func:`builtin_models`) or a ``.tvel``/``.nd`` (or TauP
    ``.npz``) file. ``depth_km``: source depth below the surface, km; negative depths (events
    above sea level) are treated as 0. ``distance_km``: epicentral distance along the surface,
    km, >= 0. Both are scalars or arrays and broadcast; the result has the broadcast shape
    (0-d for scalars). NaN depth or distance (e.g. a station without coordinates) gives NaN.
    Raises ``ValueError`` for an unknown/unreadable model or a negative distance, and its
    subclass :class:`SourceDepthError` for a depth the model cannot place a source at.
    """
    key = _model_key(model)
    z, x = np.broadcast_arrays(np.asarray(depth_km, dtype=float), np.asarray(distance_km, dtype=float))
    if np.any(x < 0):
        raise ValueError("epicentral distance must be >= 0 km")
    z = np.maximum(z, 0.0)  # NaN stays NaN
    depths, table = _table(key)
    out = np.full(z.shape, np.nan)
    ok = np.isfinite(z) & np.isfinite(x)
    inside = ok & (z <= depths[-1]) & (x <= DISTANCES_KM[-1])
    zi = np.clip(np.searchsorted(depths, z[inside], "right") - 1, 0, len(depths) - 2)
    wz = (z[inside] - depths[zi]) / (depths[zi + 1] - depths[zi])
    xf = x[inside] / DIST_STEP_KM
    xi = np.clip(xf.astype(int), 0, len(DISTANCES_KM) - 2)
    wx = xf - xi
    out[inside] = ((1 - wz) * ((1 - wx) * table[zi, xi] + wx * table[zi, xi + 1])
                   + wz * ((1 - wx) * table[zi + 1, xi] + wx * table[zi + 1, xi + 1]))
    # Outside the table (or a table cell without an arrival): exact, once per unique source depth.
    rest = np.flatnonzero(ok & np.isnan(out))
    if rest.size:
        unique_depths, group = np.unique(z.ravel()[rest], return_inverse=True)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(unique_depths) + 1))
        flat = out.ravel()  # a view: out is a fresh contiguous array
        for g, depth in enumerate(unique_depths):
            members = rest[order[bounds[g]:bounds[g + 1]]]
            x_rad, inverse = np.unique(_km_to_rad(x.ravel()[members]), return_inverse=True)
            flat[members] = _first_arrival(_branches_memo(key, float(depth)), x_rad)[inverse.ravel()]
    return out


def predicted_p_time(origin_time: float, depth_km: float, distance_km, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Predicted first-P arrival time, POSIX seconds: ``origin_time`` + :func:`first_p_travel_time`."""
    return float(origin_time) + first_p_travel_time(model, depth_km, distance_km)
