"""The three built-in synthetic regions: ``alpine``, ``basin`` and ``craton``.

Their values fill the frozen dataclasses of :mod:`raydisc.synthetic.specs` (sensors in
:mod:`raydisc.synthetic.instruments`), which say what each number means and its unit.
The regions differ as real networks do: crust and attenuation, station count and
aperture, sampling rate, instrument, noise, magnitude ranges, blasting practice and
class balance.
"""
from __future__ import annotations

from .instruments import BROADBAND_120S, GEOPHONE_1HZ, SHORT_PERIOD_2HZ
from .recording import CRATON_RECORDING
from .specs import (AttenuationSpec, BlastingSpec, CatalogSpec, CrustModel, NetworkSpec, NoiseSpec, QuarrySite,
                    RegionSpec, SeismicitySpec, SlopeSite, SurfaceSpec, WaveSpec)

ALPINE = RegionSpec(
    name="alpine",
    latitude=46.8,
    longitude=10.9,
    utc_offset_h=1.0,
    sampling_rate_hz=200.0,
    blast_fraction=0.60,
    crust=CrustModel(
        tops_km=(0.0, 1.5, 12.0, 25.0, 45.0),
        vp_km_s=(4.8, 5.9, 6.2, 6.7, 8.0),
        vs_km_s=(2.75, 3.4, 3.6, 3.85, 4.5),
        density_g_cm3=(2.45, 2.7, 2.8, 2.95, 3.3),
        turning_depth_per_km=0.22,
    ),
    attenuation=AttenuationSpec(qp0=180.0, qs0=120.0, eta=0.6, kappa_s=0.03),
    instrument=GEOPHONE_1HZ,
    noise=NoiseSpec(
        microseism_asd=2.0e-7,
        microseism_hz=0.2,
        microseism_width=0.45,
        microseism_event_sigma=0.5,
        background_asd=3.5e-9,
        background_slope=-0.5,
        cultural_asd_day=1.3e-8,
        cultural_corner_hz=3.0,
        cultural_night_factor=0.35,
        cultural_weekend_factor=0.6,
        rolloff_hz=45.0,
        station_sigma=0.5,
    ),
    network=NetworkSpec(
        code="AL",
        station_prefix="ALP",
        n_stations=10,
        min_radius_km=3.0,
        max_radius_km=55.0,
        min_spacing_km=9.0,
        elevation_m=(600.0, 2400.0),
    ),
    seismicity=SeismicitySpec(
        b_value=1.0,
        magnitude_range=(0.7, 3.8),
        epicentre_radius_km=45.0,
        depth_km=(1.5, 16.0),
        depth_mode_km=7.0,
        stress_drop_mpa=1.2,
        stress_drop_sigma=1.0,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Kalkwerk Nord", east_km=-14.0, north_km=18.0, hole_delay_ms=17.0),
            QuarrySite("Steinbruch Au", east_km=22.0, north_km=6.0, hole_delay_ms=25.0),
            QuarrySite("Hartsteinwerk Tal", east_km=4.0, north_km=-21.0, hole_delay_ms=20.0),
            QuarrySite("Gipsbruch West", east_km=-30.0, north_km=-8.0, hole_delay_ms=33.0),
        ),
        location_sigma_km=0.4,
        depth_km=(0.02, 0.15),
        working_hours=(7.0, 17.0),
        magnitude_mean=1.4,
        magnitude_sigma=0.35,
        magnitude_range=(0.6, 2.6),
        holes=(2, 60),
        rows=(1, 3),
        row_delay_ms=65.0,
        delay_spread=0.1,
        jitter_ms=1.0,  # electronic detonators
    ),
    waves=WaveSpec(
        path_sigma=0.35,
        p_coda_decay_s=1.5,
        s_coda_decay_s=3.0,
        coda_distance_ref_km=40.0,
        p_coda_energy=2.0,
        s_coda_energy=4.0,
        coda_rise_s=0.3,
        rg_velocity_km_s=(2.9, 2.0),
        rg_q=30.0,
    ),
    catalog=CatalogSpec(location_sigma_km=0.8, depth_sigma_km=1.5, magnitude_sigma=0.1),
    # Rock walls and avalanche tracks of high valleys.
    surface=SurfaceSpec(
        event_types=("rockslide", "snow avalanche"),
        sites=(
            SlopeSite("Nordwand Bergsturz", east_km=-8.0, north_km=27.0),
            SlopeSite("Lawinenzug Hochtal", east_km=18.0, north_km=-12.0),
            SlopeSite("Felsflanke Ost", east_km=31.0, north_km=15.0),
        ),
        location_sigma_km=0.3,
        magnitude_mean=1.4,
    ),
)

BASIN = RegionSpec(
    name="basin",
    latitude=39.3,
    longitude=-111.6,
    utc_offset_h=-7.0,
    sampling_rate_hz=100.0,
    blast_fraction=0.50,
    crust=CrustModel(
        tops_km=(0.0, 2.5, 10.0, 22.0, 38.0),
        vp_km_s=(3.4, 5.6, 6.1, 6.6, 7.9),
        vs_km_s=(1.9, 3.2, 3.5, 3.8, 4.45),
        density_g_cm3=(2.25, 2.6, 2.75, 2.9, 3.3),
        turning_depth_per_km=0.18,
    ),
    attenuation=AttenuationSpec(qp0=130.0, qs0=85.0, eta=0.7, kappa_s=0.045),
    instrument=BROADBAND_120S,
    noise=NoiseSpec(
        microseism_asd=6.0e-7,
        microseism_hz=0.17,
        microseism_width=0.5,
        microseism_event_sigma=0.6,
        background_asd=4.0e-9,
        background_slope=-0.5,
        cultural_asd_day=1.5e-8,
        cultural_corner_hz=2.0,
        cultural_night_factor=0.3,
        cultural_weekend_factor=0.5,
        rolloff_hz=40.0,
        station_sigma=0.6,
    ),
    network=NetworkSpec(
        code="BS",
        station_prefix="BSN",
        n_stations=9,
        min_radius_km=5.0,
        max_radius_km=110.0,
        min_spacing_km=20.0,
        elevation_m=(1300.0, 2100.0),
    ),
    seismicity=SeismicitySpec(
        b_value=0.95,
        magnitude_range=(1.3, 4.2),
        epicentre_radius_km=85.0,
        depth_km=(1.0, 20.0),
        depth_mode_km=8.0,
        stress_drop_mpa=0.8,
        stress_drop_sigma=1.0,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Copper Pit", east_km=-35.0, north_km=20.0, hole_delay_ms=25.0),
            QuarrySite("Gravel Flats", east_km=15.0, north_km=-40.0, hole_delay_ms=42.0),
            QuarrySite("Limestone Ridge", east_km=50.0, north_km=30.0, hole_delay_ms=35.0),
            QuarrySite("Coal Bench", east_km=-10.0, north_km=-65.0, hole_delay_ms=50.0),
            QuarrySite("Basin Aggregate", east_km=5.0, north_km=8.0, hole_delay_ms=17.0),
        ),
        location_sigma_km=0.6,
        depth_km=(0.02, 0.25),
        working_hours=(8.0, 17.0),
        magnitude_mean=1.9,
        magnitude_sigma=0.4,
        magnitude_range=(1.0, 3.0),
        holes=(3, 120),
        rows=(1, 4),
        row_delay_ms=100.0,
        delay_spread=0.15,
        jitter_ms=3.0,
    ),
    waves=WaveSpec(
        path_sigma=0.4,
        p_coda_decay_s=2.0,
        s_coda_decay_s=4.0,
        coda_distance_ref_km=60.0,
        p_coda_energy=2.5,
        s_coda_energy=5.0,
        coda_rise_s=0.4,
        rg_velocity_km_s=(2.6, 1.6),
        rg_q=25.0,
        rg_to_p=40.0,
    ),
    catalog=CatalogSpec(location_sigma_km=1.5, depth_sigma_km=2.5, magnitude_sigma=0.12),
    # Range-front canyon walls and slumping bluffs.
    surface=SurfaceSpec(
        event_types=("landslide", "rockslide"),
        sites=(
            SlopeSite("Canyon Wall", east_km=-45.0, north_km=35.0),
            SlopeSite("Slide Bluff", east_km=25.0, north_km=-20.0),
        ),
        location_sigma_km=0.6,
        # Stations are tens of km from the slopes: only the larger slides are catalogued.
        magnitude_mean=1.9,
        magnitude_range=(1.2, 2.8),
    ),
)

CRATON = RegionSpec(
    name="craton",
    latitude=62.4,
    longitude=26.1,
    utc_offset_h=2.0,
    # Synthesis rate; the stations digitise at 20-500 Hz (CRATON_RECORDING).
    sampling_rate_hz=100.0,
    blast_fraction=0.06,
    crust=CrustModel(
        tops_km=(0.0, 0.5, 12.0, 28.0, 48.0),
        vp_km_s=(5.8, 6.15, 6.45, 7.0, 8.1),
        vs_km_s=(3.35, 3.55, 3.72, 3.98, 4.55),
        density_g_cm3=(2.65, 2.7, 2.8, 3.0, 3.3),
        turning_depth_per_km=0.16,
    ),
    attenuation=AttenuationSpec(
        qp0=450.0, qs0=300.0, eta=0.45, kappa_s=0.015, spreading_crossover_km=100.0
    ),
    instrument=SHORT_PERIOD_2HZ,
    noise=NoiseSpec(
        microseism_asd=3.0e-7,
        microseism_hz=0.25,
        microseism_width=0.4,
        microseism_event_sigma=0.5,
        background_asd=1.2e-9,
        background_slope=-0.6,
        cultural_asd_day=2.5e-9,
        cultural_corner_hz=4.0,
        cultural_night_factor=0.4,
        cultural_weekend_factor=0.7,
        rolloff_hz=22.0,
        station_sigma=0.45,
    ),
    network=NetworkSpec(
        code="CR",
        station_prefix="CRT",
        # More than a 3-C network would need: field stations are lost to vertical-only
        # components, slow digitizers and missing metadata.
        n_stations=10,
        min_radius_km=20.0,
        max_radius_km=200.0,
        min_spacing_km=45.0,
        elevation_m=(80.0, 320.0),
    ),
    seismicity=SeismicitySpec(
        b_value=0.9,
        magnitude_range=(0.6, 3.8),
        epicentre_radius_km=120.0,
        depth_km=(2.0, 25.0),
        depth_mode_km=12.0,
        stress_drop_mpa=1.5,
        stress_drop_sigma=0.9,
    ),
    blasting=BlastingSpec(
        quarries=(
            QuarrySite("Kivilouhos", east_km=40.0, north_km=-25.0, hole_delay_ms=25.0),
            QuarrySite("Malmikaivos", east_km=-60.0, north_km=55.0, hole_delay_ms=50.0),
            QuarrySite("Kalkkitehdas", east_km=-15.0, north_km=-90.0, hole_delay_ms=42.0),
        ),
        location_sigma_km=0.5,
        depth_km=(0.02, 0.3),
        working_hours=(7.0, 16.0),
        magnitude_mean=1.6,
        magnitude_sigma=0.35,
        magnitude_range=(0.8, 2.8),
        holes=(2, 30),
        rows=(1, 2),
        row_delay_ms=100.0,
        delay_spread=0.1,
        jitter_ms=8.0,  # pyrotechnic caps
    ),
    waves=WaveSpec(
        path_sigma=0.35,
        p_coda_decay_s=2.5,
        s_coda_decay_s=5.0,
        coda_distance_ref_km=100.0,
        p_coda_energy=1.5,
        s_coda_energy=3.0,
        coda_rise_s=0.5,
        rg_velocity_km_s=(3.2, 2.6),
        rg_q=60.0,
        rg_to_p=20.0,
    ),
    catalog=CatalogSpec(location_sigma_km=2.0, depth_sigma_km=3.0, magnitude_sigma=0.1),
    recording=CRATON_RECORDING,
    # A flat shield: only clay landslides on river banks, no rock walls or snow slopes.
    surface=SurfaceSpec(
        event_types=("landslide",),
        sites=(
            SlopeSite("Savijoki Bank", east_km=30.0, north_km=45.0),
            SlopeSite("Jokivarsi Slope", east_km=-50.0, north_km=-20.0),
        ),
        location_sigma_km=0.8,
        magnitude_mean=1.7,
        magnitude_range=(1.0, 2.6),
        rise_s=(4.0, 20.0),
        duration_s=(40.0, 120.0),
        peak_hz=(1.0, 2.5),
    ),
)

#: The three built-in regions, by name.
REGIONS: dict[str, RegionSpec] = {spec.name: spec for spec in (ALPINE, BASIN, CRATON)}

