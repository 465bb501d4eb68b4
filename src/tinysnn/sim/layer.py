"""The excitatory layer of S streams (replicas or images) and the reference LIF step.

``ExcitatoryLayer.step_`` is THE reference simulation step: the equations of ``tinysnn.neurons``
with the lateral inhibition of ``tinysnn.inhibition``, and the quantizer storing u where a
device would. Every simulator's step path runs it; the compiled window (``lif_window``), the
closed-form integrator and the integer-only evaluator are tested against it.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..network import DeviceConstants, make_inhibition
from ..neurons import NEVER, integrate_, reset_
from ..quant import Quantizer


class ExcitatoryLayer:
    """u, last spike steps and spike counts [S, N]; ``observe(u)`` sees u after every update (range analysis)."""

    def __init__(self, device: DeviceConstants, streams: int, quant: Quantizer, torch_device: torch.device,
                 observe: Callable[[torch.Tensor], None] | None = None) -> None:
        n = device.network.n_neurons
        self.c, self.quant, self.observe = device.exc, quant, observe
        self.u = torch.zeros(streams, n, device=torch_device, dtype=quant.state_dtype)
        self.last_spike = torch.full((streams, n), NEVER, device=torch_device)
        self.counts = torch.zeros(streams, n, device=torch_device)
        self.inhibition = make_inhibition(device, (streams, n), torch_device)
        #: the last step at which any neuron fired (no neuron is refractory long after it)
        self.last_fire_step = int(NEVER)

    def reset(self) -> None:
        """A presentation's start: every neuron at rest, none refractory, no inhibition under way."""
        self.u.zero_()
        self.last_spike.fill_(NEVER)
        self.counts.zero_()
        self.inhibition.reset()
        self.last_fire_step = int(NEVER)

    def step_(self, current: torch.Tensor, step: int, threshold: torch.Tensor) -> torch.Tensor | None:
        """Advance one step with X→E ``current`` [S, N] (consumed); the bool spikes when any neuron fired."""
        current = current.to(self.u.dtype)  # float64 for fixed-point membranes (exact sums)
        inhibition = self.inhibition.current(step)
        if inhibition is not None:
            current.add_(inhibition)
        integrate_(self.u, current, self.last_spike, step, self.c,
                   may_be_refractory=step - self.last_fire_step <= self.c.refrac_steps)
        self.quant.store_membrane_(self.u)
        if self.observe is not None:
            self.observe(self.u)
        spikes = self.u >= threshold  # V_th = u_th + θ
        if not bool(spikes.any()):
            return None
        self.fire_(step, spikes)
        return spikes

    def fire_(self, step: int, spikes: torch.Tensor) -> None:
        """Reset the neurons that spiked at ``step``, count them, hand them to the lateral inhibition."""
        reset_(self.u, self.last_spike, spikes, step, self.c)
        self.last_fire_step = step
        self.counts.add_(spikes)
        self.inhibition.exc_spiked(step, spikes)
