"""A folder of per-station miniSEED files with a label CSV becomes an archive that gives
the same model inputs as the archive it was made from; bad rows and files are recorded."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from raydisc.config import ConfigError, PreprocessConfig
from raydisc.data.archive_writer import read_import_rejects
from raydisc.data.folder import FolderImportConfig, import_folder
from raydisc.data.records import IngestError

from source_helpers import STUDY_COLUMNS, model_inputs, write_study_folder

REGION = "basin"
# The label table has no picks: compare with windows predicted from the origin on both sides.
PREDICTED = PreprocessConfig(pick_source="predicted")


@pytest.fixture(scope="module")
def study_folder(source_archive, tmp_path_factory):
    """The archive's basin region as a study folder: one miniSEED file per event and
    station, a CSV with its own column names and ANSS type codes, a StationXML folder."""
    root = tmp_path_factory.mktemp("study")
    event_ids = write_study_folder(source_archive, REGION, root)
    # A damaged file of the first event (whole records of garbage), rows that cannot be
    # used, and a broken StationXML file.
    (root / "waveforms" / f"{event_ids[0]}_XX.BAD.mseed").write_bytes(b"\x17" * 4096)
    with open(root / "labels.csv", "a", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["bad-time", "yesterday", 40.0, -112.0, 5.0, 2.0, "eq"])
        writer.writerow(["weird-type", "2022-01-01T00:00:00", 40.0, -112.0, 5.0, 2.0, "zz"])
        writer.writerow(["no-data", "2022-01-02T00:00:00", 40.0, -112.0, 5.0, 2.0, "eq"])
    (root / "stationxml" / "broken.xml").write_text("<FDSNStationXML")
    return root, event_ids


COLUMNS = STUDY_COLUMNS


@pytest.mark.parametrize("match", ["pattern", "time"])
def test_folder_import_gives_the_archive_inputs(study_folder, source_archive, tmp_path, match):
    root, event_ids = study_folder
    config = FolderImportConfig(region="study", match=match, filename_pattern="{event_id}_*.mseed", **COLUMNS)
    out = str(tmp_path / "archive")
    summary = import_folder(str(root / "waveforms"), str(root / "labels.csv"), str(root / "stationxml"), out, config)
    assert summary["events"] == len(event_ids) + 1  # the 'no-data' row is a valid event
    assert summary["written"] == len(event_ids)
    reasons = {(r.event_id, r.reason) for r in read_import_rejects(out, "study")}
    assert ("bad-time", "bad_catalog_entry") in reasons
    assert ("weird-type", "unknown_event_type") in reasons
    assert ("no-data", "missing_waveform_file") in reasons
    assert ("*", "unreadable_inventory") in reasons
    bad = [r for r in read_import_rejects(out, "study") if r.reason == "unreadable_waveform_file"]
    assert len(bad) == 1 and "XX.BAD" in bad[0].source + bad[0].detail

    imported = model_inputs(out, "study", PREDICTED)
    original = model_inputs(source_archive, REGION, PREDICTED)
    assert len(original) == 9 * len(event_ids)
    assert sorted(imported) == sorted(original)
    for key, value in original.items():
        np.testing.assert_array_equal(imported[key]["waveform"], value["waveform"])
        np.testing.assert_array_equal(imported[key]["spectrogram"], value["spectrogram"])
        assert imported[key]["label"] == value["label"]

    again = import_folder(str(root / "waveforms"), str(root / "labels.csv"), str(root / "stationxml"), out, config)
    assert again["written"] == 0 and again["skipped"] == len(event_ids)


def test_folder_import_names_a_missing_column(study_folder, tmp_path):
    root, _ = study_folder
    config = FolderImportConfig(region="study", **{**COLUMNS, "type_column": "source_type"})
    with pytest.raises(IngestError, match=r"labels\.csv.*source_type"):
        import_folder(str(root / "waveforms"), str(root / "labels.csv"), str(root / "stationxml"),
                      str(tmp_path / "a"), config)
    assert not os.path.exists(tmp_path / "a")


def test_folder_import_config_is_checked():
    with pytest.raises(ConfigError, match="event_id"):
        FolderImportConfig(region="r", filename_pattern="*.mseed")
    with pytest.raises(ConfigError, match="region"):
        FolderImportConfig(region="a/b")
