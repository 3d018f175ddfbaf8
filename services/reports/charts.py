"""Charts as inline SVG: one matplotlib set-up (headless, no fonts or files fetched) for
every chart of the reports."""

from __future__ import annotations

import io
from typing import Any

COLORS = ("#e8590c", "#2b8a3e", "#1971c2", "#868e96")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: reports are written where no display is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element to inline in a page, then closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def grouped_bars(title: str, labels: list[str], series: dict[str, list[float]],
                 ylabel: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.4))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(xs, values, width, label=name, color=COLORS[i % len(COLORS)])
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return svg(fig)


def hbars(title: str, values: dict[str, float], xlabel: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(values)))
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color=COLORS[2])
    for y, n in enumerate(names):
        ax.text(values[n], y, f" {values[n]:,.0f}", va="center", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return svg(fig)
