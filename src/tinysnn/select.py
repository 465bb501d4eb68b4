"""Model selection over a sweep (the paper's Eq. 3): ``python -m tinysnn.select <sweep dir> selection.mu=0.5``.

Every finished run under the given folders (each ``metrics.json``) is a candidate. Its reward is

    R = acc_q − μ · M_q / M_0

with acc_q its test accuracy (a fraction), M_q its memory footprint (paper Eq. 4) and M_0 that
of the FP32 model of the same architecture. Candidates that break a constraint (memory,
inference or training energy per image, minimum accuracy) are ranked but never chosen. The
choice is made per dataset; the command prints the ranked table, the chosen model, the Pareto
fronts of accuracy against memory and against inference energy, and how the choice moves as
μ grows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import ConfigError
from .results import read_json

#: μ values of the sweep that shows how the choice moves
DEFAULT_MUS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


@dataclass
class SelectionConfig:
    #: μ in R = acc − μ·M_q/M_0
    mu: float = 0.1
    #: constraints (null = none): memory footprint, energy per image (µJ), test accuracy (fraction)
    max_memory_kb: Optional[float] = None
    max_inference_uj: Optional[float] = None
    max_training_uj: Optional[float] = None
    min_accuracy: Optional[float] = None
    #: all_activity or proportion
    readout: str = "all_activity"
    #: the μ values for the sweep table
    mus: list[float] = field(default_factory=lambda: list(DEFAULT_MUS))

    def check(self) -> None:
        if self.mu < 0:
            raise ConfigError(f"invalid config `selection.mu`: must be >= 0, got {self.mu}")
        if any(m < 0 for m in self.mus):
            raise ConfigError("invalid config `selection.mus`: every μ must be >= 0")
        for key in ("max_memory_kb", "max_inference_uj", "max_training_uj"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"invalid config `selection.{key}`: must be > 0 or null, got {value}")
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise ConfigError(f"invalid config `selection.min_accuracy`: a fraction in [0, 1], got {self.min_accuracy}")
        if self.readout not in ("all_activity", "proportion"):
            raise ConfigError(f"invalid config `selection.readout`: all_activity or proportion, got {self.readout}")


@dataclass(frozen=True)
class Candidate:
    """One finished run, reduced to what selection weighs."""

    path: str
    dataset: str
    topology: str
    scheme: str  # none, ptq, itq
    bits: int | None  # None = FP32
    target: str
    rounding: str
    train_images: int
    accuracy: float
    memory_bytes: float
    memory_norm: float  # M_q / M_0
    inference_uj: float | None  # per image, operation-count model
    training_uj: float | None  # per training image; PTQ: its FP32 reference's

    @property
    def name(self) -> str:
        trained = f" ({self.train_images / 1000:g}k)" if self.scheme == "itq" else ""
        if self.bits is None:
            return f"{self.topology} FP32{trained}"
        return f"{self.topology} {self.scheme.upper()} {self.bits}-bit q{self.target.upper()} {self.rounding}{trained}"


def reward(candidate: Candidate, mu: float) -> float:
    """R = acc_q − μ·M_q/M_0 (paper Eq. 3)."""
    return candidate.accuracy - mu * candidate.memory_norm


def violations(candidate: Candidate, config: SelectionConfig) -> list[str]:
    """The constraints ``candidate`` breaks (empty when feasible)."""
    broken = []
    if config.max_memory_kb is not None and candidate.memory_bytes / 1024 > config.max_memory_kb:
        broken.append("memory")
    for key, value in (("inference", candidate.inference_uj), ("training", candidate.training_uj)):
        limit = getattr(config, f"max_{key}_uj")
        if limit is not None and (value is None or value > limit):
            broken.append(f"{key} energy")
    if config.min_accuracy is not None and candidate.accuracy < config.min_accuracy:
        broken.append("accuracy")
    return broken


def ranked(candidates: Iterable[Candidate], mu: float) -> list[Candidate]:
    """By reward, best first (ties: less memory first)."""
    return sorted(candidates, key=lambda c: (-reward(c, mu), c.memory_norm, c.name))


def choose(candidates: Iterable[Candidate], config: SelectionConfig, mu: float | None = None) -> Candidate | None:
    """The feasible candidate of highest reward, or None when none is feasible."""
    feasible = [c for c in candidates if not violations(c, config)]
    best = ranked(feasible, config.mu if mu is None else mu)
    return best[0] if best else None


def pareto_front(candidates: Iterable[Candidate], cost: Callable[[Candidate], float | None]) -> list[Candidate]:
    """Candidates no other beats on both accuracy (higher) and ``cost`` (lower), by ascending cost."""
    points = sorted((c for c in candidates if cost(c) is not None), key=lambda c: (cost(c), -c.accuracy))
    front: list[Candidate] = []
    for candidate in points:
        if not front or candidate.accuracy > front[-1].accuracy:
            front.append(candidate)
    return front


# --- loading ------------------------------------------------------------------------------


def _training_uj(metrics: dict[str, Any]) -> float | None:
    """Training energy per image; a PTQ run's is its FP32 reference's (None when unrecorded)."""
    energy = metrics.get("energy_pj_per_image", {}).get("train")
    if energy is not None:
        return energy["total"] / 1e6
    reference = metrics.get("quant", {}).get("reference")
    if metrics.get("quant", {}).get("scheme") == "ptq" and reference:
        return _reference_training_uj(reference)
    return None


@lru_cache(maxsize=None)
def _reference_training_uj(reference: str) -> float | None:
    """The training energy of an FP32 reference run folder (read once for all its PTQ runs)."""
    path = Path(reference) / "metrics.json"
    return _training_uj(read_json(path)) if path.is_file() else None


def candidate_of(path: Path, readout: str = "all_activity") -> Candidate | None:
    """The candidate recorded in a ``metrics.json`` (None for files without the cost records)."""
    metrics = read_json(path)
    if "memory" not in metrics or "energy_pj_per_image" not in metrics:
        return None
    quant = metrics["quant"]
    bits = quant["bits"] if quant["active"] else None
    inference = metrics["energy_pj_per_image"]["inference"]
    return Candidate(path=str(path.parent), dataset=metrics["dataset"], topology=metrics["topology"],
                     scheme=quant["scheme"], bits=bits, target=quant["target"], rounding=quant["rounding"],
                     train_images=metrics["train"]["images"], accuracy=metrics["accuracy"][readout],
                     memory_bytes=metrics["memory"]["total_bytes"], memory_norm=metrics["memory"]["normalized"],
                     inference_uj=inference["total"] / 1e6 if inference else None,
                     training_uj=_training_uj(metrics))


def load_candidates(folders: Iterable[Path], readout: str = "all_activity") -> list[Candidate]:
    candidates = []
    for folder in folders:
        if not folder.exists():
            raise ConfigError(f"{folder} does not exist; give a sweep folder (hydra.sweep.dir) or run folder")
        for path in sorted(folder.rglob("metrics.json")):
            candidate = candidate_of(path, readout)
            if candidate is not None:
                candidates.append(candidate)
    return candidates


# --- printing -----------------------------------------------------------------------------


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def ranking_table(candidates: list[Candidate], config: SelectionConfig, limit: int | None = None) -> str:
    lines = ["| rank | model | accuracy % | memory KB | M_q/M_0 | inference µJ/img | training µJ/img | R | constraints |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for rank, c in enumerate(ranked(candidates, config.mu)[:limit], 1):
        broken = violations(c, config)
        lines.append(f"| {rank} | {c.name} | {100 * c.accuracy:.2f} | {c.memory_bytes / 1024:.1f} | "
                     f"{c.memory_norm:.3f} | {_cell(c.inference_uj, '.2f')} | {_cell(c.training_uj, '.2f')} | "
                     f"{reward(c, config.mu):.4f} | {'breaks ' + ', '.join(broken) if broken else 'ok'} |")
    return "\n".join(lines)


def mu_table(candidates: list[Candidate], config: SelectionConfig) -> str:
    lines = ["| μ | chosen | accuracy % | M_q/M_0 | R |", "|---:|---|---:|---:|---:|"]
    for mu in config.mus:
        chosen = choose(candidates, config, mu)
        if chosen is None:
            lines.append(f"| {mu:g} | none feasible | | | |")
        else:
            lines.append(f"| {mu:g} | {chosen.name} | {100 * chosen.accuracy:.2f} | {chosen.memory_norm:.3f} | "
                         f"{reward(chosen, mu):.4f} |")
    return "\n".join(lines)


def front_line(front: list[Candidate], cost: Callable[[Candidate], float | None], unit: str) -> str:
    return " → ".join(f"{c.name} ({100 * c.accuracy:.2f} %, {cost(c):.3g} {unit})" for c in front)


def selection_report(candidates: list[Candidate], config: SelectionConfig, limit: int | None = 20) -> str:
    """The markdown the command prints: per dataset, ranking, choice, Pareto fronts, μ sweep."""
    out = []
    for dataset in sorted({c.dataset for c in candidates}):
        mine = [c for c in candidates if c.dataset == dataset]
        chosen = choose(mine, config)
        out += [f"## {dataset}: {len(mine)} models, μ = {config.mu:g}", "",
                ranking_table(mine, config, limit), "",
                f"**Chosen:** {chosen.name} — {100 * chosen.accuracy:.2f} %, {chosen.memory_bytes / 1024:.1f} KB "
                f"(M_q/M_0 = {chosen.memory_norm:.3f}), R = {reward(chosen, config.mu):.4f}; {chosen.path}"
                if chosen else "**Chosen:** none — no model meets the constraints", "",
                "Pareto front, accuracy vs memory: "
                + front_line(pareto_front(mine, lambda c: c.memory_bytes / 1024), lambda c: c.memory_bytes / 1024, "KB"),
                "", "Pareto front, accuracy vs inference energy: "
                + front_line(pareto_front(mine, lambda c: c.inference_uj), lambda c: c.inference_uj, "µJ"),
                "", "How the choice moves with μ:", "", mu_table(mine, config), ""]
    return "\n".join(out)


def parse_args(argv: list[str]) -> tuple[list[Path], SelectionConfig]:
    """Folders, then ``selection.key=value`` overrides (Hydra style)."""
    folders = [Path(a) for a in argv if "=" not in a]
    overrides = [a for a in argv if "=" in a]
    bad = [o for o in overrides if not o.startswith("selection.")]
    if bad:
        raise ConfigError(f"unknown override {bad[0]!r}: options are selection.<key>=<value>, "
                          f"keys: {', '.join(SelectionConfig.__dataclass_fields__)}")
    if not folders:
        raise ConfigError("give at least one sweep folder: python -m tinysnn.select <sweep dir> selection.mu=0.1")
    schema = OmegaConf.structured(SelectionConfig)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.from_dotlist([o[len("selection."):] for o in overrides]))
    except OmegaConfBaseException as error:  # unknown keys, values of the wrong type
        raise ConfigError(f"invalid selection override: {error}") from None
    config: Any = OmegaConf.to_object(merged)
    config.check()
    return folders, config


def main(argv: list[str] | None = None) -> int:
    try:
        folders, config = parse_args(sys.argv[1:] if argv is None else argv)
        candidates = load_candidates(folders, config.readout)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not candidates:
        print(f"error: no finished runs (metrics.json with memory and energy) under {', '.join(map(str, folders))}",
              file=sys.stderr)
        return 2
    print(selection_report(candidates, config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
