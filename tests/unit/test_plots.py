"""The appearance timeline drawn for the Dagster UI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talent_assets.core.plots import (
    BAR,
    GOLD,
    LEFT,
    RIGHT,
    ROW_HEIGHT,
    TOP,
    WIDTH,
    appearance_timeline_png,
    tick_step,
)


def _decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _x(t: float, span: float) -> int:
    return LEFT + round(t / span * (WIDTH - LEFT - RIGHT))


def _is(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return bool(np.abs(pixel.astype(int) - np.array(colour)).max() <= tolerance)


def test_bars_follow_appearances_and_stars_mark_selected_frames() -> None:
    span = 100.0
    appearances = {0: np.arange(10.0, 20.0, 0.5), 3: np.arange(60.0, 70.0, 0.5)}
    png = appearance_timeline_png(appearances, span, {0: 30.0, 3: 60.5}, 0.5)
    image = _decode(png)
    assert image.shape[1] == WIDTH
    assert image.shape[0] > TOP + 2 * ROW_HEIGHT  # one row per person, plus title and axis

    # Person 0's row (row 0): a bar over 10-20 s, nothing at 50 s.
    bar_y = TOP + 10
    assert _is(image[bar_y, _x(15.0, span)], BAR)
    assert _is(image[bar_y, _x(50.0, span)], (255, 255, 255))
    # Person 3's row (row 1): a bar over 60-70 s, none over 10-20 s.
    assert _is(image[TOP + ROW_HEIGHT + 10, _x(67.0, span)], BAR)
    assert not _is(image[TOP + ROW_HEIGHT + 10, _x(15.0, span)], BAR)
    # The star for person 0 sits at 30 s (+ half a sample), outside any bar.
    middle = TOP + ROW_HEIGHT // 2
    assert _is(image[middle, _x(30.25, span)], GOLD)
    assert not _is(image[middle, _x(45.0, span)], GOLD)


def test_no_people_still_draws_an_axis() -> None:
    image = _decode(appearance_timeline_png({}, 12.0, {}, 0.5))
    assert image.shape[1] == WIDTH
    assert (image < 100).any()  # axis lines and labels


@pytest.mark.parametrize(
    ("duration", "step"), [(4.0, 1.0), (16.0, 2.0), (150.0, 15.0), (3600.0, 600.0)]
)
def test_tick_step_keeps_at_most_ten_ticks(duration: float, step: float) -> None:
    assert tick_step(duration) == step
    assert duration / tick_step(duration) <= 10
