"""What a simulation did, counted as it ran: the events an energy model prices.

Counts are exact and cheap (each is a number the kernels already had on the host). Per-step
work that does not depend on activity (neuron updates, trace decays) follows from
``presentations`` × steps × population size and is not counted separately.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class OpCounts:
    #: network presentations (one replica or one image, each ``steps`` long)
    presentations: int = 0
    #: input spikes S_in; each is a row of N synaptic operations (weight read + accumulate)
    input_spikes: int = 0
    #: excitatory spikes S_exc; each inhibits the N − 1 others (directly, or via its inhibitory partner)
    exc_spikes: int = 0
    #: inhibitory-population spikes S_inh (Diehl & Cook topology only)
    inh_spikes: int = 0
    #: weight columns (I elements each) rewritten by a postsynaptic or windowed update
    column_updates: int = 0
    #: weight rows (N elements each) rewritten by a presynaptic-spike update (pair STDP)
    row_updates: int = 0
    #: training presentations followed by weight normalisation and θ decay (I·N + N elements)
    normalizations: int = 0

    def __iadd__(self, other: "OpCounts") -> "OpCounts":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
