"""Pictures for the Dagster UI: who is on screen when.

Drawn with OpenCV, which the pipeline has loaded already: matplotlib cost about a second per
run (its import and first figure) on the critical path of ``selected_frames``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

WIDTH = 800
ROW_HEIGHT = 34
LEFT = 96  # room for "person 12"
RIGHT = 24
TOP = 34  # title
BOTTOM = 44  # tick labels and the axis label
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)
BAR = (180, 119, 31)  # matplotlib's tab:blue, in BGR
GOLD = (0, 200, 255)
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def tick_step(duration_s: float, max_ticks: int = 10) -> float:
    """The smallest round step (seconds) that puts at most ``max_ticks`` ticks on the axis."""
    for step in _NICE_STEPS:
        if duration_s / step <= max_ticks:
            return float(step)
    return float(math.ceil(duration_s / max_ticks / 3600) * 3600)


def appearance_timeline_png(
    appearances: dict[int, np.ndarray],
    duration_s: float,
    selected: dict[int, float],
    sample_interval_s: float,
) -> bytes:
    """A PNG with one row per person: a bar for each sampled frame they are in, and a star
    at the timestamp of their selected frame."""
    people = sorted(appearances)
    rows = max(1, len(people))
    height = TOP + rows * ROW_HEIGHT + BOTTOM
    image = np.full((height, WIDTH, 3), 255, dtype=np.uint8)
    span = max(duration_s, sample_interval_s)
    plot_width = WIDTH - LEFT - RIGHT
    bottom = TOP + rows * ROW_HEIGHT

    def x_of(t: float) -> int:
        return LEFT + round(min(max(t, 0.0), span) / span * plot_width)

    step = tick_step(span)
    ticks = np.arange(0.0, span + 1e-9, step)
    for t in ticks:
        x = x_of(float(t))
        cv2.line(image, (x, TOP), (x, bottom), GRID, 1)
        cv2.line(image, (x, bottom), (x, bottom + 4), BLACK, 1)
        label = f"{t:g}"
        (w, _), _ = cv2.getTextSize(label, FONT, 0.4, 1)
        cv2.putText(image, label, (x - w // 2, bottom + 17), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
    (w, _), _ = cv2.getTextSize("seconds", FONT, 0.45, 1)
    cv2.putText(image, "seconds", (LEFT + (plot_width - w) // 2, bottom + 36), FONT, 0.45,
                BLACK, 1, cv2.LINE_AA)  # fmt: skip

    bar_px = max(1, round(sample_interval_s / span * plot_width))
    for row, pid in enumerate(people):
        top = TOP + row * ROW_HEIGHT
        middle = top + ROW_HEIGHT // 2
        cv2.putText(image, f"person {pid}", (8, middle + 5), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
        for t in np.unique(appearances[pid]):
            x = x_of(float(t))
            cv2.rectangle(image, (x, top + 6), (min(x + bar_px, LEFT + plot_width), top + 28),
                          BAR, cv2.FILLED)  # fmt: skip
        if pid in selected:
            _star(image, (x_of(selected[pid] + sample_interval_s / 2), middle))

    cv2.rectangle(image, (LEFT, TOP), (LEFT + plot_width, bottom), BLACK, 1)
    title = "Appearances (    selected frame)"
    (w, _), _ = cv2.getTextSize(title, FONT, 0.5, 1)
    title_x = (WIDTH - w) // 2
    cv2.putText(image, title, (title_x, 22), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
    (prefix_w, _), _ = cv2.getTextSize("Appearances (", FONT, 0.5, 1)
    _star(image, (title_x + prefix_w + 9, 17))
    ok, png = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - imencode fails only for unsupported formats
        raise RuntimeError("could not encode the timeline PNG")
    return png.tobytes()


def _star(image: np.ndarray, centre: tuple[int, int], radius: int = 9) -> None:
    """A filled gold five-pointed star with a black outline: a selected frame's marker."""
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
    polygon = np.round(points).astype(np.int32)[None]
    cv2.fillPoly(image, polygon, GOLD, cv2.LINE_AA)
    cv2.polylines(image, polygon, True, BLACK, 1, cv2.LINE_AA)
