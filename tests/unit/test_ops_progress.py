"""The ops commands' progress line: rate and time left, redrawn in place on a terminal, plain lines elsewhere."""
from __future__ import annotations

import io

from chalicelib.ops.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_line_shows_done_over_total_the_rate_and_the_time_left():
    clock = Clock()
    progress = Progress("rescore t", 1_000, unit="clients", out=io.StringIO(), tty=False, clock=clock)
    clock.now = 10.0
    progress.update(250)
    assert progress.line() == "rescore t: 250 / 1,000 clients (25%), 25/s, 30 s left"
    clock.now = 100.0
    assert progress.line().endswith("2.5/s, 5 min 00 s left")


def test_a_terminal_gets_one_line_redrawn_in_place_and_a_newline_at_the_end():
    out, clock = io.StringIO(), Clock()
    progress = Progress("reindex t", 10, out=out, tty=True, clock=clock)
    for done in (3, 6, 10):
        clock.now += 1
        progress.update(done)
    assert out.getvalue().count("\r") == 3 and "\n" not in out.getvalue()
    progress.finish()
    *_, before, last = out.getvalue().split("\r")
    assert last.endswith("\n") and last.rstrip("\n").rstrip(" ") == "reindex t: 10 / 10 rows in 3 s"
    assert len(last.rstrip("\n")) >= len(before.rstrip(" "))  # blanks cover what the line before left on screen


def test_a_log_gets_a_plain_line_every_few_seconds_only():
    out, clock = io.StringIO(), Clock()
    progress = Progress("segments t", 100, out=out, tty=False, every=5.0, clock=clock)
    for second in range(1, 12):
        clock.now = float(second)
        progress.update(second * 5)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split(" /")[0].strip() for line in lines[:-1]] == ["25", "50"]  # at 5 s and 10 s
    assert lines[-1] == "segments t: 55 / 100 rows in 11 s"
    assert "\r" not in out.getvalue()


def test_an_unknown_total_leaves_out_the_share_and_the_time_left():
    clock = Clock()
    progress = Progress("verify t", None, out=io.StringIO(), tty=False, clock=clock)
    clock.now = 2.0
    progress.update(40)
    assert progress.line() == "verify t: 40 rows, 20/s"
