"""Device choice, threads and explicit random generators."""

from __future__ import annotations

import torch

from .config import ConfigError

#: offset between a run's seed and its evaluation generator, so evaluation spikes never
#: share a stream with training
EVAL_SEED_OFFSET = 1_000_003
#: offset of the validation pass's generator (its own, so validation does not depend on the test pass)
VAL_SEED_OFFSET = 2_000_029
#: offset of the stochastic-rounding generators' seeds from the run seed (apart from spikes' generators)
ROUNDING_SEED_OFFSET = 7_919


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("invalid config `device`: cuda was asked for but torch sees no CUDA device; "
                          "use device=auto or device=cpu")
    return torch.device(name)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def replica_generators(seed: int, replicas: int, device: torch.device) -> list[torch.Generator]:
    """Replica r draws from seed + r, so it reproduces a single run with that seed."""
    return [make_generator(seed + r, device) for r in range(replicas)]

