"""Preprocess a waveform archive into Parquet shards on Ray.

    python jobs/preprocess.py ARCHIVE SHARDS [--regions alpine,basin] [...]
    ray job submit --working-dir . -- python jobs/preprocess.py s3://bucket/archive s3://bucket/shards

Reads each region's QuakeML catalog, StationXML inventory and miniSEED files with ObsPy,
cuts every station's 3-component window, and writes spectrograms and waveforms into
Parquet shards with an event-wise split. Options: ``raydisc preprocess --help``.
"""
import sys

from raydisc.cli import main

if __name__ == "__main__":
    sys.exit(main(["preprocess", *sys.argv[1:]]))
