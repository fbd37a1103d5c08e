"""StationXML of a synthetic network, as its recording plan describes it.

Complete stations get one epoch per channel with the full response (sensor poles/zeros
plus digitizer gain, the transfer function applied in the synthesis). The plan's
metadata defects are written as the field has them: sensitivity-only or absent
responses, stations left out, a gap between two channel epochs, and stations without
coordinates (elements removed from the XML after ObsPy wrote it, since ObsPy objects
cannot lack them).
"""
from __future__ import annotations

import copy
import io

import numpy as np
from lxml import etree
from obspy import Inventory, UTCDateTime
from obspy.core.inventory import Channel, Network as InvNetwork, Site, Station
from obspy.core.inventory.response import CoefficientsTypeResponseStage, Response

from . import physics
from .events import Network
from .instruments import InstrumentSpec
from .specs import RegionSpec
from .stations import RESPONSE_FULL, RESPONSE_NONE, RESPONSE_SENSITIVITY, StationPlan

#: Fixed creation time, so the written files depend only on the seed.
CREATED = UTCDateTime("2020-06-01T00:00:00")
AGENCY = "raydisc-synthetic"


def channel_response(spec: RegionSpec, instrument: InstrumentSpec | None = None, sampling_rate_hz: float | None = None) -> Response:
    """Seismometer poles/zeros (m/s -> V) plus digitizer gain (V -> counts) of
    ``instrument`` (default: the region's) digitised at ``sampling_rate_hz`` (default:
    the region's rate)."""
    ins = instrument or spec.instrument
    rate = spec.sampling_rate_hz if sampling_rate_hz is None else sampling_rate_hz
    f_norm = ins.normalization_hz
    response = Response.from_paz(
        zeros=list(ins.zeros),
        poles=list(ins.poles),
        stage_gain=ins.generator_v_per_m_s,
        stage_gain_frequency=f_norm,
        input_units="M/S",
        output_units="V",
        normalization_frequency=f_norm,
        normalization_factor=physics.paz_normalization(ins),
    )
    response.response_stages.append(
        CoefficientsTypeResponseStage(
            stage_sequence_number=2,
            stage_gain=ins.digitizer_counts_per_v,
            stage_gain_frequency=f_norm,
            input_units="V",
            output_units="COUNTS",
            cf_transfer_function_type="DIGITAL",
            numerator=[],
            denominator=[],
            decimation_input_sample_rate=rate,
            decimation_factor=1,
            decimation_offset=0,
            decimation_delay=0.0,
            decimation_correction=0.0,
        )
    )
    response.recalculate_overall_sensitivity(f_norm)
    # from_paz labelled the overall sensitivity with the sensor's units (m/s -> V);
    # the whole chain ends in counts.
    response.instrument_sensitivity.input_units = "M/S"
    response.instrument_sensitivity.output_units = "COUNTS"
    sensitivity = response.instrument_sensitivity.value
    if not np.isclose(sensitivity, ins.sensitivity_counts_per_m_s, rtol=1e-6):
        raise AssertionError(
            f"{spec.name}: response sensitivity {sensitivity} != applied gain {ins.sensitivity_counts_per_m_s}"
        )
    return response


def _response(full: Response, kind: str) -> Response | None:
    if kind == RESPONSE_FULL:
        return copy.deepcopy(full)
    if kind == RESPONSE_SENSITIVITY:
        # A nominal overall gain without stages, as in many hand-made inventories.
        return Response(instrument_sensitivity=copy.deepcopy(full.instrument_sensitivity), response_stages=[])
    if kind == RESPONSE_NONE:
        return None
    raise ValueError(f"unknown response kind {kind!r}")


def build_inventory(spec: RegionSpec, network: Network, plan: tuple[StationPlan, ...]) -> Inventory:
    """ObsPy inventory of the plan's stations that are in the StationXML (all but the
    ``missing_from_inventory`` ones), coordinates included (see :func:`inventory_bytes`)."""
    responses: dict[tuple[str, float], Response] = {}
    start = UTCDateTime(spec.catalog.start) - 365 * 86400
    stations = []
    for station in plan:
        if not station.in_inventory:
            continue
        i = station.index
        lat, lon, elev = float(network.latitude[i]), float(network.longitude[i]), float(network.elevation_m[i])
        epochs = [(start, None)]
        if station.epoch_gap is not None:
            epochs = [(start, station.epoch_gap[0]), (station.epoch_gap[1], None)]
        channels = []
        for sensor in station.sensors:
            key = (sensor.instrument.name, sensor.sampling_rate_hz)
            if key not in responses:
                responses[key] = channel_response(spec, sensor.instrument, sensor.sampling_rate_hz)
            for ch in sensor.channels:
                for epoch_start, epoch_end in epochs:
                    channels.append(
                        Channel(
                            code=ch.code,
                            location_code=sensor.location,
                            latitude=lat,
                            longitude=lon,
                            elevation=elev,
                            depth=0.0,
                            azimuth=ch.azimuth,
                            dip=ch.dip,
                            sample_rate=sensor.sampling_rate_hz,
                            start_date=epoch_start,
                            end_date=epoch_end,
                            sensor=None,
                            response=_response(responses[key], station.response),
                        )
                    )
        stations.append(
            Station(
                code=station.code,
                latitude=lat,
                longitude=lon,
                elevation=elev,
                start_date=start,
                creation_date=start,
                site=Site(name=f"{spec.name} {station.code}"),
                channels=channels,
            )
        )
    net = InvNetwork(
        code=network.code,
        stations=stations,
        start_date=start,
        description=f"raydisc synthetic {spec.name} network ({spec.instrument.name})",
    )
    return Inventory(networks=[net], source=AGENCY, created=CREATED, module="raydisc.synthetic", module_uri=None)


def inventory_bytes(spec: RegionSpec, network: Network, plan: tuple[StationPlan, ...]) -> bytes:
    """The StationXML document of :func:`build_inventory`, with the Latitude and
    Longitude elements of stations planned without coordinates (and their channels)
    removed. Such a document is schema-invalid, and ObsPy 1.5's ``read_inventory``
    raises ``TypeError`` on it (it cannot build a Station or Channel without them)."""
    buffer = io.BytesIO()
    build_inventory(spec, network, plan).write(buffer, format="STATIONXML")
    data = buffer.getvalue()
    blank = {s.code for s in plan if s.in_inventory and not s.coordinates}
    if not blank:
        return data
    root = etree.fromstring(data)
    for station in root.iter("{*}Station"):
        if station.get("code") in blank:
            for element in list(station.iter("{*}Latitude", "{*}Longitude")):
                element.getparent().remove(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
