"""Checkpoints as plain dicts of tensors and Python values (loadable with weights_only=True)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .results import RecordError, atomic_write

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, *, weights: torch.Tensor, theta: torch.Tensor, assignments: torch.Tensor,
                    proportions: torch.Tensor, config: dict[str, Any], rng_states: list[torch.Tensor]) -> Path:
    """weights [R, I, N], theta [R, N], assignments [R, N], proportions [R, N, C]; all moved to CPU."""
    payload = {
        "format_version": FORMAT_VERSION,
        "weights": weights.detach().cpu(),
        "theta": theta.detach().cpu(),
        "assignments": assignments.detach().cpu(),
        "proportions": proportions.detach().cpu(),
        "config": config,
        "rng_states": [s.cpu() for s in rng_states],
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"checkpoint {path} does not exist; train one with `python -m tinysnn.train`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load raises RuntimeError, OSError, pickle errors … on damaged files
        raise RecordError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); it is damaged or "
                          "truncated: re-run the training that wrote it") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise RecordError(f"{path} is not a tinysnn checkpoint of format version {FORMAT_VERSION}")
    return payload
