"""Per-station recording plan of a network: sensors, channels, rates, metadata defects.

:func:`build_plan` turns a region's :class:`~raydisc.synthetic.recording.RecordingSpec`
into one :class:`StationPlan` per station, drawn from ``(seed, region)`` in a random
stream of its own (see :mod:`.events`): the stations' positions, the events and the
ground motion do not depend on it. :func:`field_test_spec` makes a test region with
every field defect switched on.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from obspy import UTCDateTime

from .events import Network, recording_rng
from .recording import RecordingSpec
from .instruments import BROADBAND_120S, SHORT_PERIOD_2HZ, InstrumentSpec
from .specs import RegionSpec

#: SEED instrument code of every channel: high-gain seismometer.
INSTRUMENT_CODE = "H"
#: Sensors with a corner period at or above this (s) are broadband in SEED's band codes.
BROADBAND_CORNER_S = 10.0
#: Station rates must be ``fs * up / down`` of the synthesis rate ``fs`` with
#: ``up, down`` at most this (polyphase resampling stays cheap).
MAX_RESAMPLE_FACTOR = 50
#: Response state of a channel in the StationXML.
RESPONSE_FULL, RESPONSE_SENSITIVITY, RESPONSE_NONE = "full", "sensitivity", "none"


def corner_period_s(instrument: InstrumentSpec) -> float:
    """Natural period (s) of the sensor: that of its lowest-frequency non-zero pole."""
    return 2.0 * math.pi / min(abs(p) for p in instrument.poles if p != 0)


def band_code(sampling_rate_hz: float, instrument: InstrumentSpec) -> str:
    """SEED band code (SEED manual v2.4, appendix A) of a channel digitised at
    ``sampling_rate_hz`` from ``instrument``: short period (corner < 10 s) ``D``
    (250-1000 Hz), ``E`` (80-250 Hz), ``S`` (10-80 Hz); broadband ``C``, ``H``, ``B``
    in the same rate bands."""
    broadband = corner_period_s(instrument) >= BROADBAND_CORNER_S
    for lower, short, broad in ((250.0, "D", "C"), (80.0, "E", "H"), (10.0, "S", "B")):
        if sampling_rate_hz >= lower:
            return broad if broadband else short
    raise ValueError(f"no SEED band code for a seismometer at {sampling_rate_hz} Hz (< 10 Hz)")


def resample_factors(station_rate_hz: float, synthesis_rate_hz: float) -> tuple[int, int]:
    """``(up, down)`` with ``station_rate = synthesis_rate * up / down`` (lowest terms)."""
    ratio = Fraction(station_rate_hz / synthesis_rate_hz).limit_denominator(MAX_RESAMPLE_FACTOR)
    if ratio.numerator > MAX_RESAMPLE_FACTOR or not math.isclose(
        float(ratio) * synthesis_rate_hz, station_rate_hz, rel_tol=1e-9
    ):
        raise ValueError(
            f"station rate {station_rate_hz} Hz is not a simple rational multiple of the synthesis rate "
            f"{synthesis_rate_hz} Hz"
        )
    return ratio.numerator, ratio.denominator


@dataclass(frozen=True)
class ChannelPlan:
    """One channel: SEED code, StationXML orientation (degrees; dip -90 is up) and the
    unit vector ``(z, north, east)`` of ground motion it records."""

    code: str
    azimuth: float
    dip: float
    projection: tuple[float, float, float]


@dataclass(frozen=True)
class SensorPlan:
    """One sensor (location code) of a station, digitised at ``sampling_rate_hz``."""

    location: str
    instrument: InstrumentSpec
    sampling_rate_hz: float
    channels: tuple[ChannelPlan, ...]
    primary: bool = True  # False: the co-located second sensor of a dual-sensor station

    @property
    def channel_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.channels)


@dataclass(frozen=True)
class StationPlan:
    """How station ``index`` of the network records and is described.

    ``components`` is its component set (``"Z"``, ``"ZN"``, ``"ZNE"`` ...),
    ``azimuth_1`` the azimuth of channel 1 (degrees; ``None`` with N/E horizontals).
    ``epoch_gap`` is the (start, end) of the gap between its two channel epochs.
    """

    index: int
    code: str
    components: str
    azimuth_1: float | None
    sensors: tuple[SensorPlan, ...]
    in_inventory: bool = True
    response: str = RESPONSE_FULL
    coordinates: bool = True
    epoch_gap: tuple[UTCDateTime, UTCDateTime] | None = None

    @property
    def primary(self) -> SensorPlan:
        return self.sensors[0]

    @property
    def defects(self) -> tuple[str, ...]:
        """What sets this station apart (empty for a complete one-sensor station):
        ``missing_from_inventory``, ``no_response``, ``sensitivity_only``,
        ``no_coordinates``, ``epoch_gap``, ``dual_sensor``."""
        out = []
        if not self.in_inventory:
            out.append("missing_from_inventory")
        if self.response == RESPONSE_NONE:
            out.append("no_response")
        elif self.response == RESPONSE_SENSITIVITY:
            out.append("sensitivity_only")
        if not self.coordinates:
            out.append("no_coordinates")
        if self.epoch_gap is not None:
            out.append("epoch_gap")
        if len(self.sensors) > 1:
            out.append("dual_sensor")
        return tuple(out)


def apportion(weights: tuple[float, ...], n: int) -> np.ndarray:
    """Counts per weight summing to ``n`` (largest remainders, ties to the first)."""
    w = np.asarray(weights, dtype=float)
    exact = w / w.sum() * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _channels(components: str, instrument: InstrumentSpec, rate: float, horizontals: str, theta: float) -> tuple[ChannelPlan, ...]:
    band = band_code(rate, instrument) + INSTRUMENT_CODE
    out = []
    for c in components:
        if c == "Z":
            out.append(ChannelPlan(band + "Z", 0.0, -90.0, (1.0, 0.0, 0.0)))
        elif horizontals == "NE":
            # Exact unit vectors: the N/E traces are the synthesised components as such.
            out.append(ChannelPlan(band + c, 0.0 if c == "N" else 90.0, 0.0, (0.0, 1.0, 0.0) if c == "N" else (0.0, 0.0, 1.0)))
        else:
            azimuth = round((theta + (0.0 if c == "N" else 90.0)) % 360.0, 1)  # as written to the XML
            a = math.radians(azimuth)
            out.append(ChannelPlan(band + ("1" if c == "N" else "2"), azimuth, 0.0, (0.0, math.cos(a), math.sin(a))))
    return tuple(out)


def build_plan(spec: RegionSpec, network: Network, seed: int) -> tuple[StationPlan, ...]:
    """One :class:`StationPlan` per station of ``network`` (deterministic in
    ``(seed, region)``).

    Every random quantity is drawn whether an option uses it or not (a fixed number of
    draws), so changing one option (e.g. ``horizontal_codes``) leaves the others alone.
    """
    rec: RecordingSpec = spec.recording
    n = network.n_stations
    if rec.defect_stations > n:
        raise ValueError(f"{spec.name}: {rec.defect_stations} defect/dual-sensor stations but only {n} stations")
    rng = recording_rng(spec, seed)
    sets = np.repeat(np.arange(len(rec.component_sets)), apportion(rec.component_weights, n))[rng.permutation(n)]
    rates_hz = rec.sampling_rates_hz or (spec.sampling_rate_hz,)
    rate_weights = rec.sampling_rate_weights or (1.0,) * len(rates_hz)
    rates = np.repeat(np.asarray(rates_hz, dtype=float), apportion(rate_weights, n))[rng.permutation(n)]
    theta = rng.uniform(0.0, 360.0, size=n).round(1) % 360.0
    defect_order = rng.permutation(n)
    for rate in set(rates_hz) | ({rec.dual_sensor_rate_hz} if rec.dual_sensor_stations else set()):
        resample_factors(rate, spec.sampling_rate_hz)  # fail early on an impossible rate
    # Distinct stations per defect, in a fixed order of defects.
    kinds = (
        ["missing"] * rec.missing_from_inventory_stations
        + ["no_response"] * rec.no_response_stations
        + ["sensitivity"] * rec.sensitivity_only_stations
        + ["no_coordinates"] * rec.no_coordinates_stations
        + ["epoch_gap"] * rec.epoch_gap_stations
        + ["dual"] * rec.dual_sensor_stations
    )
    defect = {int(defect_order[k]): kind for k, kind in enumerate(kinds)}
    cat = spec.catalog
    t0 = UTCDateTime(cat.start)
    gap = tuple(t0 + round(f * cat.duration_days) * 86400.0 for f in rec.epoch_gap_fraction)
    plans = []
    for i, code in enumerate(network.station_codes):
        components = rec.component_sets[int(sets[i])]
        kind = defect.get(i)
        primary_location, second_location = rec.dual_sensor_locations if kind == "dual" else ("", "")
        sensors = [
            SensorPlan(
                location=primary_location,
                instrument=spec.instrument,
                sampling_rate_hz=float(rates[i]),
                channels=_channels(components, spec.instrument, float(rates[i]), rec.horizontal_codes, float(theta[i])),
            )
        ]
        if kind == "dual":
            second = rec.dual_sensor_instrument
            rate = rec.dual_sensor_rate_hz
            sensors.append(SensorPlan(second_location, second, rate, _channels("ZNE", second, rate, "NE", 0.0), primary=False))
        has_horizontal_1 = rec.horizontal_codes == "12" and components != "Z"
        plans.append(
            StationPlan(
                index=i,
                code=code,
                components=components,
                azimuth_1=float(theta[i]) if has_horizontal_1 else None,
                sensors=tuple(sensors),
                in_inventory=kind != "missing",
                response={"no_response": RESPONSE_NONE, "sensitivity": RESPONSE_SENSITIVITY}.get(kind, RESPONSE_FULL),
                coordinates=kind != "no_coordinates",
                epoch_gap=gap if kind == "epoch_gap" else None,  # type: ignore[arg-type]
            )
        )
    return tuple(plans)


def corrupt_events(spec: RegionSpec, seed: int, n_events: int) -> dict[int, str]:
    """``{event index: corrupt mode}`` of the region's corrupt waveform files: a seeded
    choice among the ``n_events`` written (the events themselves stay intact; only
    which files are spoiled depends on the archive size)."""
    modes = spec.recording.corrupt_files
    if not modes or n_events == 0:
        return {}
    chosen = recording_rng(spec, seed, 1).permutation(n_events)[: len(modes)]
    return {int(i): mode for i, mode in zip(chosen, modes)}


#: Recording of :func:`field_test_spec`: every field defect at once.
FIELD_TEST = RecordingSpec(
    component_sets=("Z", "ZNE", "ZN"),
    component_weights=(0.6, 0.3, 0.1),
    horizontal_codes="12",
    sampling_rates_hz=(20.0, 50.0, 100.0, 200.0, 500.0),
    sampling_rate_weights=(1.0, 2.0, 4.0, 2.0, 1.0),
    picks=False,
    sensitivity_only_stations=1,
    no_response_stations=1,
    no_coordinates_stations=1,
    missing_from_inventory_stations=1,
    epoch_gap_stations=1,
    dual_sensor_stations=1,
    dual_sensor_instrument=BROADBAND_120S,
    dual_sensor_rate_hz=100.0,
    corrupt_files=("garbled",),
)
#: Smallest network of a field-test region (6 stations carry a defect).
FIELD_TEST_MIN_STATIONS = 10


def field_test_spec(base: RegionSpec, name: str = "field", recording: RecordingSpec = FIELD_TEST) -> RegionSpec:
    """``base``'s crust, sources and noise recorded like a field network, as region
    ``name`` (network code ``FT``, stations ``FLD01``...): at least 10 short-period
    (2 Hz) stations, 60 % vertical-only, 3-component ones with ``1``/``2``
    horizontals, rates 20-500 Hz (synthesised at >= 100 Hz), no picks, one station each
    sensitivity-only, without response, without coordinates, missing from the
    StationXML, with an epoch gap, and with a second (broadband, location ``00``)
    sensor, and one garbled waveform file (:data:`FIELD_TEST`)."""
    instrument = base.instrument if corner_period_s(base.instrument) < BROADBAND_CORNER_S else SHORT_PERIOD_2HZ
    network = dataclasses.replace(
        base.network,
        code="FT",
        station_prefix="FLD",
        n_stations=max(base.network.n_stations, FIELD_TEST_MIN_STATIONS),
    )
    return dataclasses.replace(
        base,
        name=name,
        sampling_rate_hz=max(base.sampling_rate_hz, 100.0),
        instrument=instrument,
        network=network,
        recording=recording,
    )
