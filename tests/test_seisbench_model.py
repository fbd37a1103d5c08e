"""The optional SeisBench wrapper (raydisc.api.seisbench_model): skipped without seisbench."""
from __future__ import annotations

import numpy as np
import obspy
import pytest

pytest.importorskip("seisbench")

import raydisc  # noqa: E402
from raydisc.data import layout  # noqa: E402
from serving_helpers import make_tiny_bundle  # noqa: E402

REGION = "basin"


def test_seisbench_windows_give_the_api_probabilities(tiny_archive, tmp_path):
    from raydisc.api.seisbench_model import SeisBenchDiscriminator

    ensemble = raydisc.Ensemble.load(make_tiny_bundle(str(tmp_path / "tiny")))
    model = SeisBenchDiscriminator(ensemble)
    assert model.in_samples == 4000 and model.pred_sample == 600 and model.sampling_rate == 40.0
    event = obspy.read_events(layout.catalog_uri(tiny_archive, REGION))[0]
    name = str(event.resource_id).rsplit("/", 1)[-1]
    pick = next(p for p in event.picks if p.phase_hint == "P")
    station = pick.waveform_id.station_code
    # At the model's rate already, so that SeisBench does not resample, and cut to a few
    # windows around the pick (stride one sample).
    stream = obspy.read(layout.waveform_uri(tiny_archive, REGION, name)).select(station=station)
    stream.resample(40.0)
    stream.trim(pick.time - 16, pick.time + 86)
    key = f"{pick.waveform_id.network_code}.{station}.{pick.waveform_id.location_code or ''}"
    out = model.classify(stream.copy(), stride=1, p_times={key: pick.time})
    annotations = model.annotate(stream.copy(), stride=1)
    assert {t.stats.channel for t in annotations} == {"SeisBenchDiscriminator_earthquake",
                                                     "SeisBenchDiscriminator_blast"}
    # The same window through the API, read with sensitivities only (SeisBench has no
    # StationXML): the same probabilities.
    inventory = obspy.read_inventory(layout.inventory_uri(tiny_archive, REGION))
    api = ensemble.classify(stream, inventory, event, reading={"response_removal": "sensitivity"})
    expected = api.stations[0].probabilities
    assert set(out.stations) == {key}
    for c in ("earthquake", "blast"):
        assert out.stations[key][c] == pytest.approx(expected[c], abs=1e-5)
        assert out.event[c] == pytest.approx(expected[c], abs=1e-5)
    with pytest.raises(ValueError, match="p_times"):
        model.classify(stream.copy(), stride=40)
    assert np.isfinite(annotations[0].data).all()
