"""Plasticity rules for the X→E weights, chosen by ``learning.rule``."""

from __future__ import annotations

from ..config import LearningConfig, ModelConfig, Rule, SimConfig
from .adaptive import AdaptivePotentiation
from .stdp import SLSTDP, PairSTDP
from .traces import mean_trace, trace_at

SpikeDrivenRule = PairSTDP | SLSTDP
LearningRule = PairSTDP | SLSTDP | AdaptivePotentiation


def build_rule(learning: LearningConfig, model: ModelConfig, sim: SimConfig) -> LearningRule:
    if learning.rule is Rule.pair_stdp:
        return PairSTDP.build(learning, model, sim)
    if learning.rule is Rule.sl_stdp:
        return SLSTDP.build(learning, model, sim)
    return AdaptivePotentiation.build(learning, model, sim)


__all__ = ["AdaptivePotentiation", "LearningRule", "PairSTDP", "SLSTDP", "SpikeDrivenRule", "build_rule",
           "mean_trace", "trace_at"]
