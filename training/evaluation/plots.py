"""Evaluation figures: CMC curves and query rank lists, drawn off-screen with matplotlib's Agg canvas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model.preprocess import load_image

RIGHT, WRONG, QUERY = "#1a9850", "#d73027", "#2c7bb6"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def plot_cmc(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "CMC") -> Path:
    """Draw one CMC curve (matching rate against rank, in %) per label and save it as an image."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for label, cmc in curves.items():
        values = 100.0 * np.asarray(cmc, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=f"{label} (R1 {values[0]:.1f}%)")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, Path(path))


def _show(ax, image_path: str, colour: str, caption: str) -> None:
    ax.imshow(load_image(image_path))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(4)
    ax.set_title(caption, fontsize=7, color=colour)


def plot_rank_lists(
    query: Sequence[tuple[str, int]],
    ranked: Sequence[Sequence[tuple[str, int]]],
    path: str | Path,
) -> Path:
    """Draw each query beside its ranked gallery images: green frames for right matches, red for wrong."""
    if len(query) == 0:
        raise ValueError("no queries to draw")
    cols = 1 + max(len(r) for r in ranked)
    fig = Figure(figsize=(1.1 * cols, 2.1 * len(query)))
    for row, ((q_path, q_pid), gallery) in enumerate(zip(query, ranked, strict=True)):
        axes = [fig.add_subplot(len(query), cols, row * cols + c + 1) for c in range(cols)]
        _show(axes[0], q_path, QUERY, f"query id {q_pid}")
        for rank, (ax, (g_path, g_pid)) in enumerate(zip(axes[1:], gallery, strict=False), start=1):
            _show(ax, g_path, RIGHT if g_pid == q_pid else WRONG, f"#{rank} id {g_pid}")
        for ax in axes[1 + len(gallery) :]:
            ax.axis("off")
    fig.tight_layout()
    return _save(fig, Path(path))
