"""Plasticity rules for the X→E weights, chosen by ``learning.rule``.

Every rule has the same small interface (``LearningRule``); the simulator that fits it is
chosen by ``window_steps``: rules that act at every spike, or once per update window.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ..config import LearningConfig, ModelConfig, Rule, SimConfig
from .adaptive import AdaptivePotentiation
from .schedule import EtaSchedule
from .stdp import SLSTDP, PairSTDP
from .traces import LatestSpikes, mean_trace, trace_at


class LearningRule(Protocol):
    #: −dt/τ_pre of the presynaptic trace x_pre
    pre_decay_log: float
    #: None: the rule acts at every spike; else at the end of each window of this many steps
    window_steps: int | None
    #: per-step decay of the postsynaptic trace x_post for rules that also act at presynaptic
    #: spikes (``pre_update_``); None for rules that do not
    post_decay: float | None

    def post_update_(self, cols: torch.Tensor, pre_trace: torch.Tensor, eta: float) -> None:
        """Update in place the weight columns [K, I] of neurons that spiked, with x_pre [K, I] and η_post."""
        ...


def build_rule(learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> LearningRule:
    if learning.rule is Rule.pair_stdp:
        return PairSTDP.build(learning, model, sim)
    if learning.rule is Rule.sl_stdp:
        return SLSTDP.build(learning, model, sim)
    return AdaptivePotentiation.build(learning, model, sim)


__all__ = ["SLSTDP", "AdaptivePotentiation", "EtaSchedule", "LatestSpikes", "LearningRule", "PairSTDP", "build_rule",
           "mean_trace", "trace_at"]
