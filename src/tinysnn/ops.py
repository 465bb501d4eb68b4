"""What a simulation did, counted as it ran: the events an energy model prices.

Counts are exact and cheap (each is a number the kernels already had). Per-step work that does
not depend on activity (neuron updates, trace decays) follows from ``presentations`` × steps ×
population size and is not counted separately.

``OpCounts`` holds totals (an evaluation pass, a run's record); ``ReplicaOps`` holds them per
replica of a training simulation, so that each variant of an ITQ grid records what its own
replicas did, exactly what its separate run would record. Both take counts per stream through
``count_`` (a stream is a replica in training, an image in evaluation), so a counting rule is
written once for either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Sequence

import torch


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

    def count_(self, name: str, per_stream: torch.Tensor) -> None:
        """Add the counts ``per_stream`` [S] of field ``name`` (their total)."""
        setattr(self, name, getattr(self, name) + int(per_stream.sum()))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(OpCounts))


class ReplicaOps:
    """``OpCounts`` per replica: an int64 table [R, fields] on the simulation's device (no host sync)."""

    def __init__(self, replicas: int, device: torch.device | str = "cpu") -> None:
        self.table = torch.zeros(replicas, len(FIELDS), dtype=torch.int64, device=device)

    def count_(self, name: str, per_stream: torch.Tensor) -> None:
        """Add the counts ``per_stream`` [R] (one per replica) of field ``name``."""
        self.table[:, FIELDS.index(name)] += per_stream

    def count_each_(self, name: str) -> None:
        """One more of ``name`` for every replica (a presentation, a normalisation)."""
        self.table[:, FIELDS.index(name)] += 1

    def count_at_(self, name: str, replica_idx: torch.Tensor) -> None:
        """One more of ``name`` for each entry of ``replica_idx`` [K] (repeats count again)."""
        self.table[:, FIELDS.index(name)].index_add_(0, replica_idx, torch.ones_like(replica_idx))

    def add_rows_(self, replicas: Sequence[int], part: "ReplicaOps") -> None:
        """Add the counts of ``part``, a simulation of ``replicas`` of this one (a retry)."""
        index = torch.tensor(list(replicas), dtype=torch.long, device=self.table.device)
        self.table.index_add_(0, index, part.table.to(self.table.device))

    def of(self, replicas: Sequence[int] | range | None = None) -> OpCounts:
        """The totals over ``replicas`` (all when None): what a run of just those replicas records."""
        rows = self.table if replicas is None else self.table[list(replicas)]
        return OpCounts(**dict(zip(FIELDS, rows.sum(0).tolist())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplicaOps) and torch.equal(self.table.cpu(), other.table.cpu())

    def state(self) -> dict[str, list[int]]:
        """For a saved training state: the table by field name (a plain structure, loads with weights_only)."""
        return {name: self.table[:, i].tolist() for i, name in enumerate(FIELDS)}

    @classmethod
    def from_totals(cls, totals: OpCounts, replicas: int) -> "ReplicaOps":
        """Totals of a whole simulation (a state saved before counts were kept per replica) on replica
        0's row: their sum over all replicas, a single run's record, is exact; a part of them is not."""
        ops = cls(replicas)
        ops.table[0] = torch.tensor([getattr(totals, name) for name in FIELDS])
        return ops

    @classmethod
    def from_state(cls, state: dict[str, list[int]]) -> "ReplicaOps":
        """The counts ``state()`` saved (on the CPU: ``restore`` copies them to the simulation's device)."""
        ops = cls(len(state[FIELDS[0]]))
        for i, name in enumerate(FIELDS):
            ops.table[:, i] = torch.tensor(state[name], dtype=torch.int64)
        return ops
