"""Model selection over sweeps (the paper's Eq. 3): ``python -m tinysnn.selection sweeps=[<dir>] selection.mu=0.5``.

Every finished run under the given folders (each ``metrics.json``) is a candidate. Its reward is

    R = acc_q − μ · M_q / M_0

with acc_q its validation accuracy (a fraction; test accuracy is only reported), M_q its memory
footprint (paper Eq. 4) and M_0 that of the FP32 model of the same architecture. Candidates that
break a constraint (memory, inference or training energy per image, minimum validation accuracy)
or have no validation split are ranked but never chosen. The choice is made per dataset; the
command prints the ranked table, the chosen model, the Pareto fronts of validation accuracy
against memory and against inference energy, and how the choice moves as μ grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from .app import command
from .config import ConfigError, SelectConfig, SelectionConfig
from .record import Candidate, load_candidates


def reward(candidate: Candidate, mu: float) -> float:
    """R = acc_q − μ·M_q/M_0 (paper Eq. 3) with acc_q the validation accuracy; −∞ without one
    (test accuracy is reported, never used to choose)."""
    if candidate.val_accuracy is None:
        return float("-inf")
    return candidate.val_accuracy - mu * candidate.memory_norm


def violations(candidate: Candidate, config: SelectionConfig) -> list[str]:
    """The constraints ``candidate`` breaks (empty when feasible)."""
    broken = [] if candidate.val_accuracy is not None else ["no validation split"]
    if config.max_memory_kb is not None and candidate.memory_bytes / 1024 > config.max_memory_kb:
        broken.append("memory")
    for key, value in (("inference", candidate.inference_uj), ("training", candidate.training_uj)):
        limit = getattr(config, f"max_{key}_uj")
        if limit is not None and (value is None or value > limit):
            broken.append(f"{key} energy")
    if config.min_accuracy is not None and (candidate.val_accuracy or 0.0) < config.min_accuracy:
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
    """Candidates no other beats on both validation accuracy (higher) and ``cost`` (lower), by ascending cost."""
    points = sorted((c for c in candidates if cost(c) is not None and c.val_accuracy is not None),
                    key=lambda c: (cost(c), -c.val_accuracy))  # type: ignore[operator]
    front: list[Candidate] = []
    for candidate in points:
        if not front or candidate.val_accuracy > front[-1].val_accuracy:  # type: ignore[operator]
            front.append(candidate)
    return front


def percent(value: float | None, std: float | None = None) -> str:
    """A fraction as a percentage, with ± its standard deviation over seeds where there is one."""
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


# --- printing -----------------------------------------------------------------------------


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def ranking_table(candidates: list[Candidate], config: SelectionConfig, limit: int | None = None) -> str:
    lines = ["| rank | model | seeds | val % | test % | memory KB | M_q/M_0 | inference µJ/img | training µJ/img "
             "| R | constraints |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for rank, c in enumerate(ranked(candidates, config.mu)[:limit], 1):
        broken = violations(c, config)
        lines.append(f"| {rank} | {c.name} | {c.replicas} | {percent(c.val_accuracy, c.val_accuracy_std)} | "
                     f"{percent(c.accuracy, c.accuracy_std)} | {c.memory_bytes / 1024:.1f} | "
                     f"{c.memory_norm:.3f} | {_cell(c.inference_uj, '.2f')} | {_cell(c.training_uj, '.2f')} | "
                     f"{reward(c, config.mu):.4f} | {'breaks ' + ', '.join(broken) if broken else 'ok'} |")
    return "\n".join(lines)


def mu_table(candidates: list[Candidate], config: SelectionConfig) -> str:
    lines = ["| μ | chosen | val % | test % | M_q/M_0 | R |", "|---:|---|---:|---:|---:|---:|"]
    for mu in config.mus:
        chosen = choose(candidates, config, mu)
        if chosen is None:
            lines.append(f"| {mu:g} | none feasible | | | | |")
        else:
            lines.append(f"| {mu:g} | {chosen.name} | {percent(chosen.val_accuracy, chosen.val_accuracy_std)} | "
                         f"{percent(chosen.accuracy, chosen.accuracy_std)} | {chosen.memory_norm:.3f} | "
                         f"{reward(chosen, mu):.4f} |")
    return "\n".join(lines)


def front_line(front: list[Candidate], cost: Callable[[Candidate], float | None], unit: str) -> str:
    return " → ".join(f"{c.name} (val {percent(c.val_accuracy)} %, {cost(c):.3g} {unit})" for c in front)


def memory_kb(candidate: Candidate) -> float:
    return candidate.memory_bytes / 1024


def selection_report(candidates: list[Candidate], config: SelectionConfig, limit: int | None = 20) -> str:
    """The markdown the command prints: per dataset, ranking, choice, Pareto fronts, μ sweep."""
    out = []
    for dataset in sorted({c.dataset for c in candidates}):
        mine = [c for c in candidates if c.dataset == dataset]
        chosen = choose(mine, config)
        out += [f"## {dataset}: {len(mine)} models, μ = {config.mu:g}", "",
                ranking_table(mine, config, limit), "",
                f"**Chosen:** {chosen.name} — validation {percent(chosen.val_accuracy, chosen.val_accuracy_std)} %, "
                f"test {percent(chosen.accuracy, chosen.accuracy_std)} %, {chosen.memory_bytes / 1024:.1f} KB "
                f"(M_q/M_0 = {chosen.memory_norm:.3f}), R = {reward(chosen, config.mu):.4f}; {chosen.path}"
                if chosen else "**Chosen:** none — no model meets the constraints", "",
                "Pareto front, validation accuracy vs memory: "
                + front_line(pareto_front(mine, memory_kb), memory_kb, "KB"),
                "", "Pareto front, validation accuracy vs inference energy: "
                + front_line(pareto_front(mine, lambda c: c.inference_uj), lambda c: c.inference_uj, "µJ"),
                "", "How the choice moves with μ:", "", mu_table(mine, config), ""]
    return "\n".join(out)


def _select(config: SelectConfig) -> None:
    folders = [Path(folder) for folder in config.sweeps]
    candidates = load_candidates(folders, config.selection.readout)
    if not candidates:
        raise ConfigError(f"no finished runs (metrics.json with memory and energy) under {', '.join(config.sweeps)}")
    print(selection_report(candidates, config.selection))


main = command("select", _select)

if __name__ == "__main__":
    main()
