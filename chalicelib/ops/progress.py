"""A one-line progress report (done / total, rate, time left): rewritten in place on a terminal, plain lines in logs."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

EVERY = 5.0        # seconds between plain lines when the output is not a terminal (CI logs, a file)
REDRAW = 0.1       # at most ten redraws a second on a terminal


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """`update(done, total)` as work goes on, `finish()` at the end. On a TTY the line is redrawn with `\\r`; any
    other output gets a plain line every EVERY seconds and one at the end, so a log shows the run without noise."""

    def __init__(self, label: str, total: int | None = None, *, unit: str = "rows", out: TextIO | None = None,
                 tty: bool | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.every = (REDRAW if self.tty else EVERY) if every is None else every
        self.clock = clock
        self.started = self.last = clock()
        self.done = 0
        self._width = 0  # of the line on screen, to blank what a shorter one leaves

    def line(self) -> str:
        """`label: 1,200 / 5,000 clients (24%), 310/s, 12 s left` (what is unknown is left out)."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        total = max(self.total, self.done) if self.total is not None else None  # an estimate may be passed
        text = f"{self.label}: {self.done:,}" + (f" / {total:,}" if total is not None else "") + f" {self.unit}"
        if total:
            text += f" ({100 * self.done // total}%)"
        text += f", {rate:,.0f}/s" if rate >= 10 or self.done == 0 else f", {rate:.1f}/s" if rate >= 1 \
            else f", {rate:.2f}/s"
        if total is not None and rate > 0 and self.done < total:
            text += f", {_duration((total - self.done) / rate)} left"
        return text

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        self._show(self.line(), final=False)

    def finish(self, summary: str = "") -> None:
        """The last line: the figures and how long it took, then `summary` (e.g. what the job counted)."""
        elapsed = self.clock() - self.started
        total = f" / {max(self.total, self.done):,}" if self.total is not None else ""
        text = f"{self.label}: {self.done:,}{total} {self.unit} in {_duration(elapsed)}" + (f"; {summary}" if summary
                                                                                             else "")
        self._show(text, final=True)

    def _show(self, text: str, *, final: bool) -> None:
        if self.tty:
            pad = " " * max(0, self._width - len(text))
            self.out.write("\r" + text + pad + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()
