"""Pictures for the Dagster UI: who is on screen when."""

from __future__ import annotations

import io

import numpy as np


def appearance_timeline_png(
    appearances: dict[int, np.ndarray],
    duration_s: float,
    selected: dict[int, float],
    sample_interval_s: float,
) -> bytes:
    """A PNG with one row per person: a bar for each sampled frame they are in, and a star
    at the timestamp of their selected frame."""
    import matplotlib

    matplotlib.use("Agg")  # no display here, and never a GUI backend in a worker
    import matplotlib.pyplot as plt

    people = sorted(appearances)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(1, len(people))), dpi=100)
    try:
        for row, pid in enumerate(people):
            times = np.unique(appearances[pid])
            ax.broken_barh(
                [(float(t), sample_interval_s) for t in times], (row - 0.35, 0.7),
                facecolors="tab:blue",
            )  # fmt: skip
            if pid in selected:
                ax.plot(selected[pid] + sample_interval_s / 2, row, "*", color="gold",
                        markersize=14, markeredgecolor="black")  # fmt: skip
        ax.set_yticks(range(len(people)), [f"person {p}" for p in people])
        ax.set_xlim(0, max(duration_s, sample_interval_s))
        ax.set_ylim(-0.6, max(0.6, len(people) - 0.4))
        ax.invert_yaxis()
        ax.set_xlabel("seconds")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("Appearances (★ selected frame)", fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
