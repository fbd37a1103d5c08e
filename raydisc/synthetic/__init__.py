"""Built-in synthetic multi-region data: real QuakeML, StationXML and miniSEED files of
earthquakes and ripple-fired quarry blasts recorded by three different networks.

>>> from raydisc.synthetic import REGIONS, generate_archive
>>> generate_archive("/tmp/archive", events_per_region=20)  # doctest: +SKIP

Modules: :mod:`.regions` (all parameters), :mod:`.physics` (sources, propagation,
noise, instruments), :mod:`.events` (keyed sampling of networks and events),
:mod:`.waveforms` (FFT synthesis in counts), :mod:`.generate` (file writing).
"""
from .events import EARTHQUAKE, QUARRY_BLAST, Network, SyntheticEvent, build_network, sample_event, true_type_of
from .generate import generate_archive, generate_region
from .regions import REGIONS, RegionSpec

__all__ = [
    "REGIONS",
    "RegionSpec",
    "generate_archive",
    "generate_region",
    "sample_event",
    "true_type_of",
    "build_network",
    "Network",
    "SyntheticEvent",
    "EARTHQUAKE",
    "QUARRY_BLAST",
]
