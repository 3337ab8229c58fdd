"""Matplotlib helpers (headless ``Agg`` backend): every figure is written as a PNG next to its data."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure(width=8.0, height=4.0, rows=1, sharex=True):
    """A figure and its axes (``rows`` stacked axes, sharing x unless ``sharex=False``)."""
    return plt.subplots(rows, 1, figsize=(width, height), dpi=110, sharex=sharex and rows > 1)


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
