"""Memory footprint, paper Eq. 4: M = N_w·B_w + Σ_k N_n,k·B_n,k.

Every stored parameter is listed with its count and bit width. A uniform connection strength
(tinySNN's lateral inhibition, D&C's E→I and I→E weights) is one parameter; the dense
accounting, as a simulator with weight matrices would store them, is reported beside it.
Neuron parameters per excitatory neuron: the membrane potential V_mem and the threshold
V_th = u_th + θ (θ is stored in it). D&C's inhibitory neurons add V_mem each and one shared
threshold; they stay FP32 in this project's qWN. M_norm = M_q / M_0 with M_0 the same
architecture in FP32; the saving is reported against the FP32 D&C baseline of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig, Topology

FP32_BITS = 32


@dataclass(frozen=True)
class MemoryItem:
    name: str
    count: int
    bits: int

    @property
    def total_bits(self) -> int:
        return self.count * self.bits


@dataclass(frozen=True)
class BitWidths:
    """Bits per stored value of each parameter (a device with per-parameter formats)."""

    weights: int = FP32_BITS
    #: the membrane potential and what acts on it (the inhibition strength)
    v_mem: int = FP32_BITS
    #: the threshold V_th = u_th + θ, per neuron
    threshold: int = FP32_BITS


FP32 = BitWidths()


def _items(topology: Topology, n_inputs: int, n: int, bits: BitWidths, dense: bool) -> list[MemoryItem]:
    items = [MemoryItem("X→E weights", n_inputs * n, bits.weights)]
    if topology is Topology.tinysnn:
        items.append(MemoryItem("lateral inhibition E→E", n * (n - 1) if dense else 1, bits.v_mem))
    else:
        items += [MemoryItem("E→I weights", n if dense else 1, FP32_BITS),
                  MemoryItem("I→E weights", n * (n - 1) if dense else 1, bits.v_mem)]
    items += [MemoryItem("excitatory V_mem", n, bits.v_mem),
              MemoryItem("excitatory V_th (u_th + θ)", n, bits.threshold)]
    if topology is Topology.diehl_cook:
        items += [MemoryItem("inhibitory V_mem", n, FP32_BITS), MemoryItem("inhibitory V_th", 1, FP32_BITS)]
    return items


def _total(items: list[MemoryItem]) -> int:
    return sum(item.total_bits for item in items)


@dataclass(frozen=True)
class MemoryReport:
    items: list[MemoryItem]
    total_bits: int
    #: M_0: the same architecture in FP32
    fp32_bits: int
    #: the FP32 Diehl & Cook baseline of the same size
    baseline_bits: int
    dense_total_bits: int
    dense_baseline_bits: int

    @property
    def normalized(self) -> float:
        """M_norm = M_q / M_0."""
        return self.total_bits / self.fp32_bits

    def to_dict(self) -> dict[str, object]:
        return {
            "items": [{"name": i.name, "count": i.count, "bits": i.bits, "total_bits": i.total_bits}
                      for i in self.items],
            "total_bits": self.total_bits, "total_bytes": self.total_bits / 8,
            "fp32_bits": self.fp32_bits, "normalized": self.normalized,
            "saving_vs_fp32_baseline": self.baseline_bits / self.total_bits,
            "dense": {"total_bits": self.dense_total_bits,
                      "saving_vs_fp32_baseline": self.dense_baseline_bits / self.dense_total_bits},
        }


def memory_report(model: ModelConfig, bits: BitWidths = FP32) -> MemoryReport:
    """Accounting of ``model`` with each parameter at its width in ``bits``."""
    args = (model.n_inputs, model.n_neurons)
    items = _items(model.topology, *args, bits, dense=False)
    return MemoryReport(
        items=items, total_bits=_total(items),
        fp32_bits=_total(_items(model.topology, *args, FP32, dense=False)),
        baseline_bits=_total(_items(Topology.diehl_cook, *args, FP32, dense=False)),
        dense_total_bits=_total(_items(model.topology, *args, bits, dense=True)),
        dense_baseline_bits=_total(_items(Topology.diehl_cook, *args, FP32, dense=True)))
