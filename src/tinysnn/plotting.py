"""Figures (matplotlib with the Agg backend; optional dependency ``tinysnn[plot]``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .results import atomic_write


def receptive_fields_grid(weights: torch.Tensor, side: int = 28) -> torch.Tensor:
    """[I, N] weights → one [rows·side, cols·side] image, neuron j's 784 weights as a tile."""
    n = weights.shape[1]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tiles = torch.zeros(rows * cols, side, side)
    tiles[:n] = weights.detach().cpu().T.reshape(n, side, side)
    return tiles.view(rows, cols, side, side).permute(0, 2, 1, 3).reshape(rows * side, cols * side)


def save_receptive_fields(path: str | Path, weights: torch.Tensor, title: str = "") -> Path | None:
    """PNG of the X→E weights; returns None (and writes nothing) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    grid = receptive_fields_grid(weights)
    fig, ax = plt.subplots(figsize=(8, 8))
    image = ax.imshow(grid.numpy(), cmap="hot_r", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or "X→E weights (one tile per excitatory neuron)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return out
