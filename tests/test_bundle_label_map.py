"""A bundle's own label map, not the global one, names the event types of its verdicts
(raydisc.labels with a label_map; raydisc.reprocess.outputs.annotate_catalog)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from raydisc.labels import EVENT_TYPE_TO_CLASS, UnknownLabelError, class_in, event_type_of, label_of
from raydisc.reprocess.outputs import annotate_catalog

#: Classes swapped and renamed: blasts are class 0 here, earthquakes class 1.
SWAPPED = {"explosion": 0, "quarry blast": 0, "tectonic earthquake": 1, "earthquake": 1}

QUAKEML = """<?xml version='1.0' encoding='utf-8'?>
<q:quakeml xmlns:q="http://quakeml.org/xmlns/quakeml/1.2" xmlns="http://quakeml.org/xmlns/bed/1.2">
  <eventParameters publicID="smi:local/catalog">
    <event publicID="smi:local/ev1">
      <type>earthquake</type>
    </event>
    <event publicID="smi:local/ev2">
      <type>quarry blast</type>
    </event>
  </eventParameters>
</q:quakeml>
"""


def test_label_functions_follow_the_given_map():
    assert class_in(" Quarry Blast ", SWAPPED) == 0 and class_in("quarry blast") == 1
    assert class_in("road cut", SWAPPED) is None and class_in("road cut") == 1
    assert label_of("Earthquake", label_map=SWAPPED) == 1 and label_of("earthquake") == 0
    with pytest.raises(UnknownLabelError):
        label_of("road cut", label_map=SWAPPED)
    assert event_type_of(0, SWAPPED) == "explosion" and event_type_of(1, SWAPPED) == "tectonic earthquake"
    assert event_type_of(0) == "earthquake" and event_type_of(1) == "quarry blast"
    assert event_type_of(1, EVENT_TYPE_TO_CLASS) == "quarry blast"


def test_annotated_catalog_uses_the_bundles_map(tmp_path):
    catalog = tmp_path / "catalog.xml"
    catalog.write_text(QUAKEML)
    # Under the swapped map class 1 is "earthquake": ev1 agrees (keeps its type), ev2
    # ("quarry blast" = class 0) contradicts and gets the map's first class-1 type.
    events = pa.Table.from_pylist([
        {"event_id": e, "verdict": "earthquake", "verdict_class": 1, "probability": 0.9, "n_stations": 2,
         "spread": 0.01} for e in ("ev1", "ev2")])
    out = tmp_path / "out.xml"
    annotate_catalog(str(catalog), events, "b1", SWAPPED, str(out))
    text = out.read_text()
    assert "<type>earthquake</type>" in text and "<type>tectonic earthquake</type>" in text
    assert "quarry blast</type>" not in text
    # The global map would have kept ev2 (class 1 = blast) and retyped ev1 as "quarry blast".
    annotate_catalog(str(catalog), events, "b1", dict(EVENT_TYPE_TO_CLASS), str(out))
    text = out.read_text()
    assert text.count("<type>quarry blast</type>") == 2


def test_recording_columns_give_catalog_class_per_the_bundles_map():
    from types import SimpleNamespace

    import numpy as np

    from raydisc.reprocess.tables import recording_columns

    events = [SimpleNamespace(event_id=e, event_type=t, origin_time=0.0, magnitude=1.0, label=None)
              for e, t in (("ev1", "earthquake"), ("ev2", "quarry blast"), ("ev3", "road cut"))]
    recordings = [SimpleNamespace(event=e, station=SimpleNamespace(network="XX", station="S1"), location="",
                                  components="ZNE", pick_source="catalog", response_kind="full", distance_km=1.0,
                                  sampling_rate=100.0, counts=np.zeros((3, 4))) for e in events]
    swapped = recording_columns(recordings, "r", events, lambda event_id: "src", SWAPPED)
    default = recording_columns(recordings, "r", events, lambda event_id: "src", dict(EVENT_TYPE_TO_CLASS))
    assert swapped["catalog_class"].tolist() == [1, 0, -1]
    assert default["catalog_class"].tolist() == [0, 1, 1]
