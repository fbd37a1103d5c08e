"""One progress line per stage, for people: a bar in a terminal, periodic lines in a log.

A redrawn bar written into a file or pipe (``make demo > log``) becomes thousands of
carriage-return frames; there, a stage prints a line at most every ``every_s`` seconds
and one when it ends, so a log reads top to bottom.
"""
from __future__ import annotations

import sys
import time


class Progress:
    """Progress of one stage of ``total`` items (``None``: unknown)::

        with Progress("preprocessing", total=12, unit="shards") as bar:
            bar.update(note="alpine: 80 recordings")
    """

    def __init__(self, stage: str, total: int | None = None, unit: str = "items", every_s: float = 10.0,
                 stream=None) -> None:
        self.stage, self.total, self.unit, self.every_s = stage, total, unit, every_s
        self.stream = stream or sys.stdout
        self.done, self.note = 0, ""
        self._start = self._last = time.monotonic()
        self._bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(desc=stage, total=total, unit=f" {unit}", file=self.stream, dynamic_ncols=True)

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note or self.note
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.set_postfix_str(self.note, refresh=False)
            self._bar.update(n)
        elif time.monotonic() - self._last >= self.every_s:
            self._line()

    def close(self, finished: bool = True) -> None:
        if self._bar is not None:
            self._bar.close()
        elif finished:
            self._line(final=True)

    def _line(self, final: bool = False) -> None:
        self._last = time.monotonic()
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        when = f"done in {format_seconds(self._last - self._start)}" if final else format_seconds(self._last - self._start)
        note = f"  ({self.note})" if self.note else ""
        print(f"{self.stage}: {count} {self.unit}, {when}{note}", file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # A failed stage ends with its error line, not with "done".
        self.close(finished=exc_type is None)


def format_seconds(seconds: float) -> str:
    """``7.3`` -> ``"7 s"``, ``135`` -> ``"2 min 15 s"``."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def last_line(text: object) -> str:
    """The last non-blank line of an error text: Ray's errors carry the remote traceback
    before it, and a person (a console line, the ``error`` column of a failures table)
    needs the line that names the cause."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(text)


__all__ = ["Progress", "format_seconds", "last_line"]
