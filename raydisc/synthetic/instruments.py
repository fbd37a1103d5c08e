"""Seismometers and digitizers of the synthetic networks.

:class:`InstrumentSpec` (poles/zeros in Laplace rad/s, input m/s; sensitivity V/(m/s)
and counts/V) and the three sensors the built-in regions and the field-test preset use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class InstrumentSpec:
    """Seismometer (poles/zeros, Laplace rad/s, input m/s) and digitizer.

    The sensor stage is normalised to ``|H(normalization_hz)| = generator_v_per_m_s``;
    the digitizer multiplies by ``digitizer_counts_per_v``. The overall sensitivity
    (counts per m/s at ``normalization_hz``) is their product.
    """

    name: str
    band_code: str  # SEED band code consistent with sampling rate and corner period
    zeros: tuple[complex, ...]
    poles: tuple[complex, ...]
    generator_v_per_m_s: float
    normalization_hz: float
    digitizer_counts_per_v: float
    #: Full scale of the 24-bit digitizer: samples are clipped to [-2**23, 2**23 - 1].
    clip_counts: int = 2**23

    @property
    def sensitivity_counts_per_m_s(self) -> float:
        return self.generator_v_per_m_s * self.digitizer_counts_per_v


def geophone(f0_hz: float, damping: float) -> tuple[tuple[complex, ...], tuple[complex, ...]]:
    """Poles and zeros of a velocity transducer with natural frequency ``f0_hz``."""
    w0 = 2 * math.pi * f0_hz
    re, im = -damping * w0, w0 * math.sqrt(1 - damping**2)
    return (0j, 0j), (complex(re, im), complex(re, -im))


_GEOPHONE_1HZ_PZ = geophone(1.0, 0.707)
_SHORT_PERIOD_2HZ_PZ = geophone(2.0, 0.7)

#: The basin network's broadband sensor; also the second sensor of dual-sensor stations
#: in :func:`raydisc.synthetic.stations.field_test_spec`.
BROADBAND_120S = InstrumentSpec(
    name="120 s broadband (Trillium-120-like), 24-bit datalogger",
    band_code="H",  # >= 80 Hz, long period
    zeros=(0j, 0j, -90.0 + 0j, -160.7 + 0j, -3108.0 + 0j),
    poles=(
        -0.03852 + 0.03658j,
        -0.03852 - 0.03658j,
        -178.0 + 0j,
        -135.0 + 160.0j,
        -135.0 - 160.0j,
        -671.0 + 1154.0j,
        -671.0 - 1154.0j,
    ),
    generator_v_per_m_s=1201.0,
    normalization_hz=1.0,
    digitizer_counts_per_v=8.388608e5,
)
#: The craton network's sensor; also the sensor of :func:`~raydisc.synthetic.stations.field_test_spec`.
SHORT_PERIOD_2HZ = InstrumentSpec(
    name="2 Hz short-period (L-22-like) with preamplifier, 24-bit datalogger",
    band_code="E",  # at the craton's 100 Hz synthesis rate; per-station codes follow each rate
    zeros=_SHORT_PERIOD_2HZ_PZ[0],
    poles=_SHORT_PERIOD_2HZ_PZ[1],
    generator_v_per_m_s=88.0,
    normalization_hz=10.0,
    digitizer_counts_per_v=2.2e7,
)
#: The alpine network's sensor.
GEOPHONE_1HZ = InstrumentSpec(
    name="1 Hz geophone (L-4C-like), 24-bit datalogger",
    band_code="E",  # >= 80 Hz, short period
    zeros=_GEOPHONE_1HZ_PZ[0],
    poles=_GEOPHONE_1HZ_PZ[1],
    generator_v_per_m_s=276.8,
    normalization_hz=10.0,
    digitizer_counts_per_v=3.6e6,
)

__all__ = ["InstrumentSpec", "geophone", "GEOPHONE_1HZ", "BROADBAND_120S", "SHORT_PERIOD_2HZ"]
