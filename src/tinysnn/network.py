"""The network's learned parameters and the constants derived from its configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .config import ModelConfig, SimConfig, Topology
from .inhibition import DirectInhibition, InhibitoryPopulation
from .neurons import LIFConstants

if TYPE_CHECKING:
    from .quant.replicas import ReplicaPlans


@dataclass
class NetworkParams:
    """What learning changes, for R independent replicas."""

    weights: torch.Tensor  # X→E weights, float32 [R, I, N]
    theta: torch.Tensor  # adaptive threshold θ (mV), float32 [R, N]

    @property
    def replicas(self) -> int:
        return self.weights.shape[0]


@dataclass(frozen=True)
class NetworkConstants:
    exc: LIFConstants
    inh: LIFConstants
    theta_plus: float
    theta_decay_per_step_log: float  # ln of θ's per-step decay, −dt/τ_θ
    n_inputs: int
    n_neurons: int

    @classmethod
    def build(cls, model: ModelConfig, sim: SimConfig) -> "NetworkConstants":
        return cls(
            exc=LIFConstants.from_config(model.exc, sim.dt_ms),
            inh=LIFConstants.from_config(model.inh, sim.dt_ms),
            theta_plus=model.theta_plus_mv,
            theta_decay_per_step_log=-sim.dt_ms / model.tau_theta_ms,
            n_inputs=model.n_inputs,
            n_neurons=model.n_neurons,
        )


def make_inhibition(model: ModelConfig, constants: NetworkConstants, shape: tuple[int, ...],
                    device: torch.device) -> InhibitoryPopulation | DirectInhibition:
    if model.topology is Topology.diehl_cook:
        return InhibitoryPopulation(shape, constants.inh, model.w_exc_inh_mv, model.w_inh_exc_mv, device)
    return DirectInhibition(model.w_lateral_mv, model.lateral_delay_steps)


def init_params(model: ModelConfig, generators: list[torch.Generator], device: torch.device) -> NetworkParams:
    """w = w_init_scale · U[0, 1) per replica (own generator), normalised; θ = 0."""
    weights = torch.stack([
        torch.rand(model.n_inputs, model.n_neurons, generator=g, device=device) * model.w_init_scale
        for g in generators
    ])
    params = NetworkParams(weights=weights, theta=torch.zeros(len(generators), model.n_neurons, device=device))
    normalize_weights_(params.weights, model.weight_norm_total)
    return params


def normalize_weights_(weights: torch.Tensor, total: float) -> None:
    """Scale each neuron's incoming weights to sum to ``total`` (in place, [..., I, N])."""
    sums = weights.sum(-2, keepdim=True)
    weights.mul_(total / sums.clamp_min(1e-12))


def end_presentation_(params: NetworkParams, steps: int, constants: NetworkConstants, model: ModelConfig,
                      quant: "ReplicaPlans | None" = None) -> None:
    """After a training presentation: θ decays, weights are renormalised (every replica).

    With a plan (ITQ) the renormalised weights, and for qWN the decayed θ, are re-quantized.
    """
    params.theta.mul_(math.exp(steps * constants.theta_decay_per_step_log))  # θ ← θ·exp(−T·dt/τ_θ)
    normalize_weights_(params.weights, model.weight_norm_total)
    if quant is not None:
        quant.replica_weights_(params.weights)
        if quant.quantizes_neurons:
            quant.replica_neurons_(params.theta)
