"""Command line of the experiments: ``raydisc sweep`` (see :mod:`.sweep.cli`) and
``raydisc report``."""
from __future__ import annotations

import argparse

from ..cli_options import add_command
from .sweep.cli import add_sweep_arguments, run_sweep_command


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="experiment folder or URI")
    parser.add_argument("--out", help="report file (default: RUN_DIR/report.md; figures in a folder beside it)")


def run_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.run_dir, args.out))
    return 0


def register(sub) -> None:
    """Add ``sweep`` and ``report`` to the subcommands ``sub`` of the ``raydisc`` parser."""
    add_command(sub, add_sweep_arguments, run_sweep_command, "sweep",
                help="Ray Tune sweep over the fraction of target data given to fine-tuning",
                description="Fine-tune a pretrained bundle's best member on nested, class-stratified "
                            "fractions of the target region's training events (and train from scratch on "
                            "the same events), several seeds each, as Ray Tune trials; writes a tidy "
                            "results table, failed trials and the learning curve. Re-running resumes.")

    add_command(sub, add_report_arguments, run_report, "report",
                help="Markdown report of a cross-region experiment, from its stored tables",
                description="Rebuild the report of a leave-one-region-out experiment (jobs/crossregion.py) "
                            "from RUN_DIR/results and RUN_DIR/sweep, without retraining: accuracy tables "
                            "(architecture x target x stage x model x level), minority-class recall, the "
                            "headline check, bar charts, confusion matrices, the fine-tuning data sweep.")
