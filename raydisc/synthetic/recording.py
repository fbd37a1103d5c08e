"""How a synthetic network records and reports: the :class:`RecordingSpec` of a region.

The default ``RecordingSpec()`` is the tidy textbook network of the built-in alpine and
basin regions (every station 3-component Z/N/E at the region's sampling rate, P and S
picks in the catalog, complete StationXML), and writes exactly the files the generator
wrote before recording options existed. The options make archives look like the field:
vertical-only and two-component stations, numbered horizontals at arbitrary azimuths,
mixed sampling rates, a catalog without picks, partial or missing metadata, co-located
sensors and corrupt waveform files.

This module only holds parameters (no numpy, no ObsPy): :mod:`.stations` turns them into
one network's per-station plan, :mod:`.streams` and :mod:`.inventory` write it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: recording sits below the region specs
    from .instruments import InstrumentSpec

#: Ground-motion components a station can have, in channel order.
COMPONENTS = "ZNE"
HORIZONTAL_CODES = ("NE", "12")
#: ``garbled``: every miniSEED record header is overwritten with random bytes, ObsPy
#: cannot read the file at all. ``truncated``: the file is cut in the middle of a
#: record; ObsPy reads the complete records before the cut without an error (fewer
#: samples and fewer traces; depending on where the cut falls it may warn with an
#: ``InternalMSEEDWarning``, or silently drop the partial record).
CORRUPT_MODES = ("garbled", "truncated")


@dataclass(frozen=True)
class RecordingSpec:
    """Recording and reporting practice of a network.

    Per-station choices (component set, sampling rate, horizontal azimuth, which
    stations carry which metadata defect) are drawn from the archive seed by
    :func:`raydisc.synthetic.stations.build_plan`, in a random stream of their own:
    they never change the stations' positions, the events or the ground motion, so two
    specs that differ only here record the same ground motion.

    Component sets and sampling rates are *apportioned* by their weights (largest
    remainders, then shuffled over the stations), not drawn independently, so a
    10-station network with weights ``(0.7, 0.2, 0.1)`` has exactly 7, 2 and 1
    stations of each set. Metadata defects go to distinct stations.
    """

    #: Component sets, each a subset of ``"ZNE"`` in that order: ``"ZNE"``, ``"Z"``
    #: (vertical only), ``"ZN"`` / ``"ZE"`` (two components; with ``"12"`` horizontals
    #: ``"ZN"`` records channel 1 and ``"ZE"`` channel 2).
    component_sets: tuple[str, ...] = ("ZNE",)
    component_weights: tuple[float, ...] = (1.0,)
    #: ``"NE"``: horizontals ``?HN`` at azimuth 0 and ``?HE`` at 90 degrees.
    #: ``"12"``: ``?H1`` at a random azimuth theta per station, ``?H2`` at theta + 90;
    #: the ground motion is projected onto those azimuths.
    horizontal_codes: str = "NE"
    #: Station sampling rates (Hz); empty: every station at the region's
    #: ``sampling_rate_hz``. Waveforms are synthesised at the region rate and resampled
    #: (band-limited polyphase FIR) to each station's rate, so each rate must be a
    #: simple rational multiple of it (e.g. 20, 50, 200, 500 Hz from 100 Hz). SEED band
    #: codes follow from rate and instrument (:func:`raydisc.synthetic.stations.band_code`).
    sampling_rates_hz: tuple[float, ...] = ()
    sampling_rate_weights: tuple[float, ...] = ()  # empty: equal weights
    #: Write P and S picks and origin arrivals; without them the catalog holds
    #: origins, magnitudes and event types only.
    picks: bool = True
    # Metadata defects: numbers of stations (distinct stations for each defect).
    #: Channels carry only an InstrumentSensitivity (no poles/zeros, no stages).
    sensitivity_only_stations: int = 0
    #: Channels have no Response element at all.
    no_response_stations: int = 0
    #: Station and channel Latitude/Longitude elements removed from the written XML
    #: (ObsPy cannot build such objects, and ``obspy.read_inventory`` then raises
    #: ``TypeError`` for the whole file: the XML is schema-invalid).
    no_coordinates_stations: int = 0
    #: Stations that record (in the miniSEED) but are absent from the StationXML.
    missing_from_inventory_stations: int = 0
    #: Stations whose channels have two epochs with a gap between them; the gap spans
    #: ``epoch_gap_fraction`` (start, end) of the catalog period.
    epoch_gap_stations: int = 0
    epoch_gap_fraction: tuple[float, float] = (0.35, 0.65)
    #: Stations with a second, co-located 3-component sensor (N/E oriented) of
    #: ``dual_sensor_instrument`` at ``dual_sensor_rate_hz``, recording the same ground
    #: motion; location codes ``dual_sensor_locations`` = (primary, second) sensor.
    dual_sensor_stations: int = 0
    dual_sensor_instrument: InstrumentSpec | None = None
    dual_sensor_rate_hz: float = 100.0
    dual_sensor_locations: tuple[str, str] = ("10", "00")
    #: Corrupt event files, one mode of :data:`CORRUPT_MODES` per file; which events
    #: is drawn from the seed among the events written.
    corrupt_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.component_sets or len(self.component_sets) != len(self.component_weights):
            raise ValueError("RecordingSpec: component_sets and component_weights must be non-empty and equally long")
        for components in self.component_sets:
            if not components or "".join(c for c in COMPONENTS if c in components) != components:
                raise ValueError(f"RecordingSpec: component set {components!r} is not an ordered subset of 'ZNE'")
        _check_weights("component_weights", self.component_weights)
        if self.horizontal_codes not in HORIZONTAL_CODES:
            raise ValueError(f"RecordingSpec: horizontal_codes must be one of {HORIZONTAL_CODES}")
        if any(r <= 0 for r in self.sampling_rates_hz):
            raise ValueError("RecordingSpec: sampling rates must be positive")
        if self.sampling_rate_weights:
            if len(self.sampling_rate_weights) != len(self.sampling_rates_hz):
                raise ValueError("RecordingSpec: sampling_rate_weights must match sampling_rates_hz")
            _check_weights("sampling_rate_weights", self.sampling_rate_weights)
        counts = (
            self.sensitivity_only_stations,
            self.no_response_stations,
            self.no_coordinates_stations,
            self.missing_from_inventory_stations,
            self.epoch_gap_stations,
            self.dual_sensor_stations,
        )
        if any(n < 0 for n in counts):
            raise ValueError("RecordingSpec: defect station counts must be >= 0")
        lo, hi = self.epoch_gap_fraction
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError("RecordingSpec: epoch_gap_fraction must satisfy 0 <= start < end <= 1")
        if self.dual_sensor_stations and self.dual_sensor_instrument is None:
            raise ValueError("RecordingSpec: dual_sensor_stations needs a dual_sensor_instrument")
        if len(set(self.dual_sensor_locations)) != 2:
            raise ValueError("RecordingSpec: dual_sensor_locations must be two different codes")
        bad = [m for m in self.corrupt_files if m not in CORRUPT_MODES]
        if bad:
            raise ValueError(f"RecordingSpec: unknown corrupt file mode(s) {bad}; known: {CORRUPT_MODES}")

    @property
    def defect_stations(self) -> int:
        """Stations that carry a metadata defect or a second sensor (all distinct)."""
        return (
            self.missing_from_inventory_stations
            + self.no_response_stations
            + self.sensitivity_only_stations
            + self.no_coordinates_stations
            + self.epoch_gap_stations
            + self.dual_sensor_stations
        )


def _check_weights(name: str, weights: tuple[float, ...]) -> None:
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"RecordingSpec: {name} must be >= 0 with a positive sum")


#: The built-in craton network as it is run in the field: sparse short-period
#: stations, mostly vertical-only (7 of 10), two 3-component stations with numbered
#: horizontals and one 2-component station, digitizers from 20 to 500 Hz (the 20 Hz
#: one is too slow for an 18 Hz analysis band), a bulletin without phase picks, one
#: station with a nominal sensitivity only and one never entered into the StationXML.
CRATON_RECORDING = RecordingSpec(
    component_sets=("Z", "ZNE", "ZN"),
    component_weights=(0.7, 0.2, 0.1),
    horizontal_codes="12",
    sampling_rates_hz=(20.0, 50.0, 100.0, 200.0, 250.0, 500.0),
    sampling_rate_weights=(1.0, 1.0, 4.0, 2.0, 1.0, 1.0),
    picks=False,
    sensitivity_only_stations=1,
    missing_from_inventory_stations=1,
)
