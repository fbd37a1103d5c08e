"""Built-in synthetic multi-region data: real QuakeML, StationXML and miniSEED files of
earthquakes and ripple-fired quarry blasts recorded by three different networks, and on
request noise windows and surface events (landslides, rockslides, snow avalanches).

>>> from raydisc.synthetic import REGIONS, generate_archive, field_test_spec
>>> generate_archive("/tmp/archive", events_per_region=20)  # doctest: +SKIP
>>> generate_archive("/tmp/archive", specs={"field": field_test_spec(REGIONS["basin"])},
...                  events_per_region=10)  # doctest: +SKIP
>>> generate_archive("/tmp/archive4", mix=FOUR_CLASS_MIX)  # doctest: +SKIP

Modules: :mod:`.specs` (parameter dataclasses), :mod:`.instruments` (sensors),
:mod:`.regions` (the built-in regions' parameters), :mod:`.recording` (how a network
records and reports: :class:`RecordingSpec`), :mod:`.physics` (sources, propagation,
noise, instruments), :mod:`.events` (keyed sampling of networks and events),
:mod:`.classes` (noise windows and surface events: shares and draws), :mod:`.grid`
(frequency grid, phases as arrays), :mod:`.surface` (surface-event seismograms),
:mod:`.stations` (per-station recording plan, field-test preset), :mod:`.waveforms`
(FFT synthesis in counts), :mod:`.streams` (channels, resampling, miniSEED, corrupt
files), :mod:`.inventory` (StationXML), :mod:`.tables` (truth and station CSVs),
:mod:`.generate` (file writing).
"""
from .classes import FOUR_CLASS_MIX, ClassMix, sample_any
from .events import EARTHQUAKE, NOT_EXISTING, QUARRY_BLAST, Network, SyntheticEvent, build_network, sample_event, true_type_of
from .generate import generate_archive, generate_region
from .recording import CRATON_RECORDING, RecordingSpec
from .regions import REGIONS
from .specs import SURFACE_EVENT_TYPES, RegionSpec
from .stations import FIELD_TEST, StationPlan, build_plan, field_test_spec

__all__ = [
    "REGIONS",
    "RegionSpec",
    "RecordingSpec",
    "CRATON_RECORDING",
    "FIELD_TEST",
    "field_test_spec",
    "build_plan",
    "StationPlan",
    "generate_archive",
    "generate_region",
    "sample_event",
    "true_type_of",
    "build_network",
    "Network",
    "SyntheticEvent",
    "EARTHQUAKE",
    "QUARRY_BLAST",
    "NOT_EXISTING",
    "SURFACE_EVENT_TYPES",
    "ClassMix",
    "FOUR_CLASS_MIX",
    "sample_any",
]
