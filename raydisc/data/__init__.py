"""Waveform archives, ingestion with ObsPy, Parquet shards and the Ray Data pipeline."""
