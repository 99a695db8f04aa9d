"""Progress of a long detection: rate, time left, one-line text, throttling; and the hook
that lets a front end (``talent process``) follow a run that executes in its own process.

Pure: callers pass the clock's readings. The hook is a context variable, so a listener set
by one caller is seen only by runs executing in that caller's thread and context (Dagster's
``execute_in_process`` runs its steps in the calling thread), and only until its ``with``
block ends: it never leaks into later runs or other threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

#: ``(done_frames, total_frames) -> None``: what a detector reports as it goes.
ProgressCallback = Callable[[int, int], None]

_LISTENER: ContextVar[ProgressCallback | None] = ContextVar("talent_progress", default=None)


@contextmanager
def listening(callback: ProgressCallback) -> Iterator[None]:
    """Within the block, :func:`notify` (called by ``face_detections``) reaches ``callback``."""
    token = _LISTENER.set(callback)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def notify(done: int, total: int) -> None:
    """Tell the listener of the current context, if any, how far detection has got."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(done, total)


def expected_frames(duration_s: float, sample_fps: float, video_frames: int = 0) -> int:
    """Sampled frames a video of ``duration_s`` should give: one per slot, and never more
    than the video has frames (when known)."""
    slots = max(1, math.ceil(duration_s * sample_fps - 1e-9))
    return min(slots, video_frames) if video_frames > 0 else slots


@dataclass(frozen=True)
class Estimate:
    """Where a job stands: done of total, seconds elapsed and (once known) seconds left."""

    done: int
    total: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def percent(self) -> int:
        """Whole per cent, rounded down: 100 only when done."""
        return math.floor(self.fraction * 100 + 1e-9)

    @property
    def remaining_s(self) -> float | None:
        """Seconds left at the rate so far; None before anything is done."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, self.elapsed_s * (self.total - self.done) / self.done)

    @property
    def rate(self) -> float:
        """Frames per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


def format_seconds(seconds: float) -> str:
    """``41 s``, ``2 min 5 s``, ``1 h 2 min``: an elapsed time."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    minutes = (s % 3600) // 60
    return f"{s // 3600} h {minutes} min" if minutes else f"{s // 3600} h"


def format_left(seconds: float | None) -> str:
    """``~7 s left``, ``~40 s left``, ``~2 min left``, ``~1 h 5 min left``: an estimate,
    rounded coarsely (to 5 s from 10 s on, to whole minutes from a minute on)."""
    if seconds is None:
        return "time left unknown"
    if seconds < 10:
        return f"~{round(seconds)} s left"
    if seconds < 57.5:
        return f"~{5 * round(seconds / 5)} s left"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"~{minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"~{hours} h {minutes} min left" if minutes else f"~{hours} h left"


def progress_line(estimate: Estimate) -> str:
    """``decoded 1,234/5,400 frames (23%), 41 s elapsed, ~2 min left``."""
    text = (
        f"decoded {estimate.done:,}/{estimate.total:,} frames ({estimate.percent}%), "
        f"{format_seconds(estimate.elapsed_s)} elapsed"
    )
    if estimate.done >= estimate.total:
        return text
    return f"{text}, {format_left(estimate.remaining_s)}"


class Throttle:
    """Lets a report through at most every ``interval_s`` (the first after ``interval_s``
    from ``started``), and always the final one (done == total)."""

    def __init__(self, interval_s: float, started: float) -> None:
        self.interval_s = interval_s
        self._last = started
        self._finished = False

    def due(self, now: float, done: int, total: int) -> bool:
        if done >= total > 0:
            if self._finished:
                return False
            self._finished = True
            return True
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


class ProgressLog:
    """A ``(done, total)`` callback that writes :func:`progress_line` through ``emit`` at most
    every ``interval_s`` (plus the final line), and forwards every report to :func:`notify`."""

    def __init__(
        self, emit: Callable[[str], None], clock: Callable[[], float], interval_s: float = 5.0
    ) -> None:
        self.emit = emit
        self.clock = clock
        self.started = clock()
        self.throttle = Throttle(interval_s, self.started)
        self.lines: list[str] = []

    def __call__(self, done: int, total: int) -> None:
        notify(done, total)
        now = self.clock()
        if self.throttle.due(now, done, total):
            line = progress_line(Estimate(done, total, now - self.started))
            self.lines.append(line)
            self.emit(line)
