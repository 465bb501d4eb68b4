"""The network's learned parameters, the constants derived from its configuration, and the
constants a (possibly fixed-point) device runs it with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import ModelConfig, SimConfig, Topology
from .inhibition import DirectInhibition, InhibitoryPopulation
from .neurons import LIFConstants

#: a value per replica: one number when every replica has it, else a [R, 1] tensor that broadcasts
PerReplica = float | torch.Tensor


@dataclass
class NetworkParams:
    """What learning changes, for R independent replicas."""

    weights: torch.Tensor  # X→E weights, float32 [R, I, N]
    theta: torch.Tensor  # adaptive threshold θ (mV), float32 [R, N]

    @property
    def replicas(self) -> int:
        return self.weights.shape[0]

    def of(self, replicas: list[int] | slice) -> "NetworkParams":
        """The parameters of some replicas (a copy for a list, a view for a slice)."""
        if isinstance(replicas, slice):
            return NetworkParams(self.weights[replicas], self.theta[replicas])
        # index_select: indexing with a list copies [k, I, N] several times slower (every retry copies)
        index = torch.tensor(replicas, dtype=torch.long, device=self.weights.device)
        return NetworkParams(self.weights.index_select(0, index), self.theta.index_select(0, index))


@dataclass(frozen=True)
class NetworkConstants:
    """The FP32 constants of a configured network, in simulation units (steps, mV relative to rest)."""

    topology: Topology
    exc: LIFConstants
    inh: LIFConstants
    theta_plus: float
    theta_decay_per_step_log: float  # ln of θ's per-step decay, −dt/τ_θ
    n_inputs: int
    n_neurons: int
    #: E→I weight (D&C's inhibitory population)
    w_exc_inh: float
    #: what one inhibiting spike removes from an excitatory membrane: I→E (D&C) or lateral (tinySNN)
    w_inh: float
    lateral_delay_steps: int
    weight_norm_total: float

    @classmethod
    def build(cls, model: ModelConfig, sim: SimConfig) -> "NetworkConstants":
        return cls(
            topology=model.topology,
            exc=LIFConstants.from_config(model.exc, sim.dt_ms),
            inh=LIFConstants.from_config(model.inh, sim.dt_ms),
            theta_plus=model.theta_plus_mv,
            theta_decay_per_step_log=-sim.dt_ms / model.tau_theta_ms,
            n_inputs=model.n_inputs,
            n_neurons=model.n_neurons,
            w_exc_inh=model.w_exc_inh_mv,
            w_inh=model.w_lateral_mv if model.topology is Topology.tinysnn else model.w_inh_exc_mv,
            lateral_delay_steps=model.lateral_delay_steps,
            weight_norm_total=model.weight_norm_total,
        )


@dataclass(frozen=True)
class DeviceConstants:
    """The constants the kernels run with: the FP32 ones, or a quantizer's values on its grids.

    ``exc`` holds the excitatory α (α_q), u_reset and refractory period shared by every replica;
    the threshold at rest u_th and the inhibition strength w_inh may differ per replica (an ITQ
    grid's variants have different grids), so they live here and not in ``exc``.
    """

    network: NetworkConstants
    exc: LIFConstants
    u_th: PerReplica
    w_inh: PerReplica

    @classmethod
    def fp32(cls, network: NetworkConstants) -> "DeviceConstants":
        return cls(network=network, exc=network.exc, u_th=network.exc.thresh, w_inh=network.w_inh)


def make_inhibition(device: DeviceConstants, shape: tuple[int, ...],
                    torch_device: torch.device) -> InhibitoryPopulation | DirectInhibition:
    network = device.network
    if network.topology is Topology.diehl_cook:
        return InhibitoryPopulation(shape, network.inh, network.w_exc_inh, device.w_inh, torch_device)
    return DirectInhibition(device.w_inh, network.lateral_delay_steps)


def init_params(model: ModelConfig, generators: list[torch.Generator], device: torch.device) -> NetworkParams:
    """w = w_init_scale · U[0, 1) per replica (own generator), normalised; θ = 0."""
    weights = torch.stack([
        torch.rand(model.n_inputs, model.n_neurons, generator=g, device=device) * model.w_init_scale
        for g in generators
    ])
    params = NetworkParams(weights=weights, theta=torch.zeros(len(generators), model.n_neurons, device=device))
    normalize_weights_(params.weights, model.weight_norm_total)
    return params


def normalization_scale(weights: torch.Tensor, total: float) -> torch.Tensor:
    """total / Σ_i w_ij: the factor that scales each neuron j's incoming weights to sum to ``total``, [..., 1, N]."""
    return total / weights.sum(-2, keepdim=True).clamp_min(1e-12)


def normalize_weights_(weights: torch.Tensor, total: float) -> None:
    """Scale each neuron's incoming weights to sum to ``total`` (in place, [..., I, N])."""
    weights.mul_(normalization_scale(weights, total))


def decay_theta_(theta: torch.Tensor, steps: int, constants: NetworkConstants) -> None:
    """After a training presentation of ``steps`` steps: θ ← θ·exp(−T·dt/τ_θ) (in place)."""
    theta.mul_(math.exp(steps * constants.theta_decay_per_step_log))
