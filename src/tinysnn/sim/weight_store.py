"""An ITQ device's end of presentation as one fused kernel (``sim.integrator=compiled``).

After every training presentation each neuron's incoming weights are scaled to sum to the
normalisation total, and the device stores them on its grid. ``round_`` does that in about ten
passes over the weights, which at an ITQ grid's [36, 784, 400] cost as much as the
presentation's windows; ``normalize_on_grid_`` is the same arithmetic (``rounded``, with the U
``store_weights_`` would draw) in one pass. The column sums stay an ATen reduction: a compiled
sum may add in another order, which would give other bits. Tested bit for bit against the step path.
"""

from __future__ import annotations

import torch

from ..network import normalization_scale
from ..quant import FixedPointQuantizer
from ..quant.rounding import Grid, rounded
from . import lif_window


def normalize_on_grid_(weights: torch.Tensor, scale: torch.Tensor, grid: Grid, offsets: torch.Tensor) -> tuple[()]:
    """w_ij ← w_ij · total / Σ_i w_ij (``scale`` [R, 1, N]) rounded onto each replica's ``grid`` with offsets o.

    In place: inductor then writes into the weights, where an output tensor would be a fresh
    [R, I, N] allocation (page faults on every call) and a copy back, three times the kernel's cost."""
    weights.copy_(rounded(weights * scale, grid, offsets))
    return ()


def normalize_and_store_(weights: torch.Tensor, total: float, quant: FixedPointQuantizer) -> None:
    """``normalize_weights_`` then ``quant.store_weights_`` on ``weights`` [R, I, N], in one compiled pass."""
    lif_window.run_compiled(normalize_on_grid_, weights, normalization_scale(weights, total),
                            quant.kernel_grid("weights", weights), quant.weight_offsets(weights))
