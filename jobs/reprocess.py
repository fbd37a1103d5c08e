"""Classify whole archives with an ensemble bundle on Ray (batch reprocessing).

    python jobs/reprocess.py BUNDLE OUTPUT --archive ROOT [--regions alpine,basin]
    python jobs/reprocess.py BUNDLE OUTPUT --region alpine --catalog s3://.../catalog.xml \
        --inventory s3://.../inventory.xml --waveforms /data/sds --waveform-format sds
    ray job submit --working-dir . -- python jobs/reprocess.py s3://b/bundle s3://b/out --archive s3://b/archive

Writes station- and event-level Parquet tables per region and chunk, a failures table,
an annotated QuakeML catalog and a review list per region; a re-run resumes.
"""
import argparse
import sys

from raydisc.cli import add_verbose_argument
from raydisc.reprocess.cli import add_reprocess_arguments, run_reprocess

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_reprocess_arguments(parser)
    add_verbose_argument(parser)
    sys.exit(run_reprocess(parser.parse_args()))
