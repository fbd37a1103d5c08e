"""Options and helpers shared by the command lines of every package (``raydisc`` and
``jobs/*.py``): comma lists, ``-v/--verbose`` and the registration of one subcommand."""
from __future__ import annotations

import argparse


def comma_list(text: str | None) -> list[str] | None:
    """``"alpine, basin"`` -> ``["alpine", "basin"]``; ``None`` for an empty option."""
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def add_verbose_argument(parser: argparse.ArgumentParser, subcommand: bool = False) -> None:
    """``-v/--verbose``: raydisc's progress details, and Ray's own console output (logs
    of the driver and workers, Ray Data's bars), which otherwise stay in Ray's session
    logs (/tmp/ray/session_latest/logs). Accepted before and after the subcommand."""
    # A subcommand's default must not overwrite a -v given before the subcommand.
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if subcommand else False,
                        help="progress details, and Ray's logs on the console instead of only in "
                             "/tmp/ray/session_latest/logs")


def add_command(sub, add_arguments, run, name: str, **texts: str) -> None:
    """One subcommand: its parser (``help``, ``description``), arguments and function."""
    parser = sub.add_parser(name, **texts)
    add_arguments(parser)
    add_verbose_argument(parser, subcommand=True)
    parser.set_defaults(func=run)
