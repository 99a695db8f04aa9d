"""Detection progress on stderr for ``talent process``: a bar on a terminal, plain lines
otherwise. Never writes to stdout (``--json`` output stays clean).

Usage (the run executes in this process, ``apps/runner.process_partition``)::

    with show_progress():
        manifest = process_video(...)

``face_detections`` reports through ``core.progress.notify``; :func:`show_progress` listens
only within its block and only in this thread's context, so nothing leaks into later runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from talent_assets.core.progress import (
    Estimate,
    Throttle,
    format_left,
    format_seconds,
    listening,
    progress_line,
)

BAR_WIDTH = 28
TTY_INTERVAL_S = 0.2  # redraws of the bar at most this often
LINE_INTERVAL_S = 10.0  # plain lines (stderr not a terminal) at most this often


def bar_text(estimate: Estimate, width: int = BAR_WIDTH) -> str:
    """``[#######.....]  1,234/5,400 frames  23%  41 s elapsed  ~2 min left``."""
    filled = round(estimate.fraction * width)
    left = "" if estimate.done >= estimate.total else f"  {format_left(estimate.remaining_s)}"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}]  {estimate.done:,}/{estimate.total:,} "
        f"frames  {estimate.percent}%  {format_seconds(estimate.elapsed_s)} elapsed{left}"
    )


class ProgressRenderer:
    """A ``(done, total)`` callback drawing detection progress on ``stream``.

    On a terminal: one line redrawn in place (carriage return), at most every
    ``TTY_INTERVAL_S``, ended by a newline when done (or by :meth:`close`). Elsewhere (a
    log file, a pipe): ``talent: decoded ...`` lines at most every ``interval_s`` seconds,
    plus the final one.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        default = TTY_INTERVAL_S if self.tty else LINE_INTERVAL_S
        self.interval_s = default if interval_s is None else interval_s
        self.clock = clock
        self.started = clock()
        self._throttle = Throttle(self.interval_s, self.started)
        self._fresh = True  # no report yet, or the last detection finished
        self._width = 0  # characters of the bar on screen (to blank a shorter redraw)

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self._fresh:  # the first report of a detection: times count from here
            self._fresh = False
            self.started = now
            self._throttle = Throttle(self.interval_s, now)
        if done >= total:
            self._fresh = True
        if not self._throttle.due(now, done, total):
            return
        estimate = Estimate(done, total, now - self.started)
        if self.tty:
            text = bar_text(estimate)
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            if done >= total:
                self.close()
        else:
            self.stream.write(f"talent: {progress_line(estimate)}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (a terminal keeps it as the last state shown)."""
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


@contextmanager
def show_progress(stream: TextIO | None = None, **options: object) -> Iterator[ProgressRenderer]:
    """Render detection progress of the runs executed in this block (this thread) on
    ``stream`` (stderr by default)."""
    renderer = ProgressRenderer(stream, **options)  # type: ignore[arg-type]
    try:
        with listening(renderer):
            yield renderer
    finally:
        renderer.close()
