"""Helpers of the data-source tests: the model inputs an archive region gives, computed
with the same code as the preprocessing job (one shard task per region, in-process)."""
from __future__ import annotations

import pyarrow.parquet as pq

from raydisc.config import PipelineConfig, PreprocessConfig, SplitConfig
from raydisc.data.pipeline import plan_shards, process_shard
from raydisc.data.shards import decode_inputs, shard_files


def inputs_of_shards(shards: str, region: str) -> dict[tuple[str, str], dict]:
    """``{(event_id, "NET.STA"): {"waveform", "spectrogram", "label", "split"}}`` of a shard folder."""
    out = {}
    for uri in shard_files(shards, [region]):
        table = pq.read_table(uri)
        waveform, spectrogram = decode_inputs(table, "waveform"), decode_inputs(table, "spectrogram")
        rows = table.select(["event_id", "network", "station", "label", "split"]).to_pylist()
        for i, row in enumerate(rows):
            out[(row["event_id"], f"{row['network']}.{row['station']}")] = {
                "waveform": waveform[i], "spectrogram": spectrogram[i], "label": row["label"], "split": row["split"]}
    return out


def model_inputs(archive: str, region: str, config: PreprocessConfig = PreprocessConfig(),
                 output: str | None = None) -> dict[tuple[str, str], dict]:
    """Model inputs of every usable recording of ``region`` (no Ray: one shard task)."""
    import tempfile

    output = output or tempfile.mkdtemp(prefix="inputs-")
    for task in plan_shards(archive, output, [region], SplitConfig(), PipelineConfig(events_per_shard=10_000)):
        process_shard(task, config)
    return inputs_of_shards(output, region)
