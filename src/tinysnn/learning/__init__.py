"""Plasticity rules (event-driven updates on the rows/columns that spiked)."""

from .stdp import PairSTDP, trace_at

__all__ = ["PairSTDP", "trace_at"]
