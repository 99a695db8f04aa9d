"""Detection progress: the arithmetic and text (core/progress.py), the hook that carries it
to a front end, and the CLI's stderr renderer (apps/progress.py) on a pipe and on a real
pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import threading

import pytest

from talent_assets.apps.progress import ProgressRenderer, bar_text, show_progress
from talent_assets.core.progress import (
    Estimate,
    ProgressLog,
    Throttle,
    expected_frames,
    format_left,
    format_seconds,
    listening,
    notify,
    progress_line,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_documented_line() -> None:
    """issue 14: ``decoded 1,234/5,400 frames (23%), 41 s elapsed, ~2 min left``."""
    estimate = Estimate(1234, 5400, 41.0)
    assert estimate.percent == 22  # 22.85 %: rounded down, 100 only when done
    assert estimate.remaining_s == pytest.approx(41.0 * (5400 - 1234) / 1234)  # 138 s
    assert progress_line(estimate) == "decoded 1,234/5,400 frames (22%), 41 s elapsed, ~2 min left"
    assert progress_line(Estimate(1242, 5400, 41.0)).startswith("decoded 1,242/5,400 frames (23%)")
    assert progress_line(Estimate(5400, 5400, 170.0)) == (
        "decoded 5,400/5,400 frames (100%), 2 min 50 s elapsed"
    )


def test_rate_and_time_left() -> None:
    assert Estimate(0, 100, 5.0).remaining_s is None
    assert Estimate(50, 100, 10.0).remaining_s == 10.0
    assert Estimate(50, 100, 10.0).rate == 5.0
    assert Estimate(120, 100, 10.0).remaining_s == 0.0 and Estimate(120, 100, 1).percent == 100
    assert Estimate(3, 0, 1.0).fraction == 0.0


@pytest.mark.parametrize(
    ("seconds", "elapsed", "left"),
    [
        (0.4, "0 s", "~0 s left"),
        (41, "41 s", "~40 s left"),
        (7.4, "7 s", "~7 s left"),
        (59.4, "59 s", "~1 min left"),
        (125, "2 min 5 s", "~2 min left"),
        (3600, "1 h", "~1 h left"),
        (3900, "1 h 5 min", "~1 h 5 min left"),
    ],
)
def test_durations(seconds: float, elapsed: str, left: str) -> None:
    assert format_seconds(seconds) == elapsed
    assert format_left(seconds) == left
    assert format_left(None) == "time left unknown"


def test_expected_frames_is_one_per_slot_bounded_by_the_video() -> None:
    assert expected_frames(8.0, 2.0) == 16
    assert expected_frames(8.01, 2.0) == 17
    assert expected_frames(10.0, 30.0, video_frames=250) == 250  # sampling faster than fps
    assert expected_frames(0.0, 2.0) == 1


def test_throttle_lets_one_report_per_interval_and_always_the_last() -> None:
    throttle = Throttle(5.0, started=0.0)
    assert [throttle.due(t, 1, 10) for t in (1.0, 4.9, 5.0, 6.0, 9.9, 10.0)] == [
        False, False, True, False, False, True,
    ]  # fmt: skip
    assert throttle.due(10.1, 10, 10)  # the final report, however soon
    assert not throttle.due(10.2, 10, 10)  # once


def test_progress_log_emits_every_interval_and_forwards_every_report() -> None:
    clock = Clock()
    lines: list[str] = []
    heard: list[tuple[int, int]] = []
    log = ProgressLog(lines.append, clock, interval_s=5.0)
    with listening(lambda d, t: heard.append((d, t))):
        for done in range(1, 101):
            clock.now += 0.2  # 5 frames per second: 20 s in all
            log(done, 100)
    assert len(heard) == 100
    assert lines == [
        "decoded 25/100 frames (25%), 5 s elapsed, ~15 s left",
        "decoded 50/100 frames (50%), 10 s elapsed, ~10 s left",
        "decoded 75/100 frames (75%), 15 s elapsed, ~5 s left",
        "decoded 100/100 frames (100%), 20 s elapsed",
    ]


def test_the_listener_is_scoped_to_its_block_and_thread() -> None:
    heard: list[tuple[int, int]] = []
    notify(1, 2)  # nobody listening: nothing happens
    other: list[tuple[int, int]] = []
    with listening(lambda d, t: heard.append((d, t))):
        notify(1, 2)
        # Another thread (e.g. a concurrent API run) does not reach this listener.
        thread = threading.Thread(target=lambda: (notify(9, 9), other.append((0, 0))))
        thread.start()
        thread.join()
        with listening(lambda d, t: other.append((d, t))):
            notify(2, 2)  # the inner block's listener only
        notify(3, 4)
    notify(4, 4)  # after the block: gone
    assert heard == [(1, 2), (3, 4)]
    assert other == [(0, 0), (2, 2)]


# --- the CLI renderer -------------------------------------------------------------------------


def test_renderer_on_a_pipe_writes_a_plain_line_every_10_s_and_the_last() -> None:
    clock = Clock()
    stream = io.StringIO()  # not a terminal
    renderer = ProgressRenderer(stream, clock=clock)
    assert not renderer.tty and renderer.interval_s == 10.0
    for done in range(0, 301):
        clock.now = 100.0 + done / 10  # 10 frames per second: 30 s in all
        renderer(done, 300)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "talent: decoded 100/300 frames (33%), 10 s elapsed, ~20 s left",
        "talent: decoded 200/300 frames (66%), 20 s elapsed, ~10 s left",
        "talent: decoded 300/300 frames (100%), 30 s elapsed",
    ]
    assert "\r" not in stream.getvalue()


def _read_all(fd: int, wait_s: float = 0.2) -> str:
    """Everything written to the terminal so far (a pty hands it out in pieces)."""
    data = b""
    while select.select([fd], [], [], wait_s)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_renderer_on_a_terminal_redraws_one_line_in_place() -> None:
    """A real pseudo-terminal: the renderer sees a TTY and redraws with carriage returns."""
    leader, follower = pty.openpty()
    clock = Clock()
    try:
        with open(follower, "w", closefd=False) as tty:
            renderer = ProgressRenderer(tty, clock=clock)
            assert renderer.tty and renderer.interval_s == 0.2
            written = ""
            for done in range(0, 51):
                clock.now = 100.0 + done / 4  # 4 frames per second: 12.5 s in all
                renderer(done, 50)
                written += _read_all(leader, 0.01)  # as a terminal would: never let it fill
        written += _read_all(leader)
    finally:
        os.close(leader)
        os.close(follower)
    draws = [d for d in written.replace("\r\n", "\n").split("\r") if d.strip()]
    assert len(draws) == 50  # one redraw per report (0.25 s apart, the interval is 0.2 s)
    assert draws[-1].rstrip("\n").strip() == bar_text(Estimate(50, 50, 12.5))
    assert written.endswith("\n") and written.count("\n") == 1  # one line, ended when done
    assert "[##############..............]  25/50 frames  50%  6 s elapsed  ~6 s left" in written


def test_show_progress_renders_what_notify_reports_and_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    stream = io.StringIO()
    with show_progress(stream, tty=False, interval_s=1.0, clock=clock):
        for done in range(1, 11):
            clock.now += 0.5
            notify(done, 10)
    notify(10, 10)  # after the block: not rendered
    assert stream.getvalue().splitlines() == [
        "talent: decoded 3/10 frames (30%), 1 s elapsed, ~2 s left",
        "talent: decoded 5/10 frames (50%), 2 s elapsed, ~2 s left",
        "talent: decoded 7/10 frames (70%), 3 s elapsed, ~1 s left",
        "talent: decoded 9/10 frames (90%), 4 s elapsed, ~0 s left",
        "talent: decoded 10/10 frames (100%), 4 s elapsed",
    ]
    assert capsys.readouterr().out == ""
