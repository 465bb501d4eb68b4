"""The study's final table, in plain text: every model tried, the chosen one marked, where its files are.

It is rendered from the select and deploy stages' outputs alone (so a study whose stages are all
reused prints the same table) and written to ``<out>/summary.txt``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ..config import OptimizeConfig
from .flow import portable
from .stages import Outputs


def _percent(value: float | None, std: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _number(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _constraints(config: OptimizeConfig) -> str:
    c = config.constraints
    limits = [f"memory ≤ {c.max_memory_kb:g} KB" if c.max_memory_kb is not None else "",
              f"energy ≤ {c.max_energy_uj:g} µJ/image" if c.max_energy_uj is not None else "",
              f"validation accuracy ≥ {100 * c.min_accuracy:g} %" if c.min_accuracy is not None else ""]
    return ", ".join(limit for limit in limits if limit) or "none"


def models_table(models: list[dict[str, Any]], chosen: str | None) -> str:
    """One aligned row per model, best reward first; ``*`` marks the chosen one."""
    header = ["", "#", "model", "val %", "test %", "memory KB", "energy µJ/img", "reward R", "constraints"]
    rows = [["*" if m["path"] == chosen else "", str(rank), m["name"], _percent(m["val"], m["val_std"]),
             _percent(m["test"], m["test_std"]), f"{m['memory_kb']:.1f}", _number(m["energy_uj"], ".3f"),
             _number(m["reward"], ".4f"), "breaks " + ", ".join(m["violations"]) if m["violations"] else "ok"]
            for rank, m in enumerate(models, 1)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    left = {0, 2, 8}  # marker, name and constraints read left to right; numbers align right

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), *map(line, rows)])


def _front(title: str, paths: list[str], by_path: dict[str, dict[str, Any]], key: str, unit: str,
           fmt: str) -> list[str]:
    """A Pareto front, one model a line, from the cheapest up."""
    return [f"Pareto front, validation accuracy vs {title}:"] + [
        f"  {'→ ' if i else '  '}{by_path[p]['name']} ({_percent(by_path[p]['val'], None)} %, "
        f"{format(by_path[p][key], fmt)} {unit})" for i, p in enumerate(paths)]


def _savings(model: dict[str, Any], models: list[dict[str, Any]]) -> str:
    """The chosen model's memory and energy against the FP32 baseline's, where there is one."""
    baseline = next((m for m in models if m["topology"] == "diehl_cook" and m["bits"] is None), None)
    if baseline is None or baseline is model or not model["energy_uj"] or baseline["energy_uj"] is None:
        return ""
    return (f"\n  against the FP32 baseline ({baseline['memory_kb']:.1f} KB, {baseline['energy_uj']:.3f} µJ/image): "
            f"{baseline['memory_kb'] / model['memory_kb']:.2f}× less memory, "
            f"{baseline['energy_uj'] / model['energy_uj']:.2f}× less energy per image")


def render(config: OptimizeConfig, preset: str, out: Path, selected: Outputs, deployed: Outputs) -> str:
    """The whole summary: table, choice, Pareto fronts, files."""
    models = selected["models"]
    by_path = {m["path"]: m for m in models}
    seeds = sorted({m["seeds"] for m in models})
    chosen = by_path.get(selected["chosen"]) if selected["chosen"] else None
    lines = [f"tinysnn.optimize: {config.dataset.value}, preset {preset}, {len(models)} models of "
             f"{'/'.join(map(str, seeds))} seeds each; constraints: {_constraints(config)}",
             f"Choice: the highest reward R = val − μ·M_q/M_0 (paper Eq. 3, μ = {config.mu:g}) among the models "
             "meeting", "the constraints. Accuracy: %, mean ± std over the seeds; validation decides, test is only "
             "reported.",
             "Memory: paper Eq. 4. Energy: inference per image, operation-count model.", "",
             models_table(models, selected["chosen"]), ""]
    if chosen is None:
        lines.append("* chosen: none — no model meets the constraints; relax them (constraints.*=null) or widen "
                     "the study")
    else:
        lines.append(f"* chosen: {chosen['name']} — validation {_percent(chosen['val'], chosen['val_std'])} %, "
                     f"test {_percent(chosen['test'], chosen['test_std'])} %, {chosen['memory_kb']:.1f} KB, "
                     f"{_number(chosen['energy_uj'], '.3f')} µJ/image{_savings(chosen, models)}")
    lines += ["", *_front("memory", selected["pareto_memory"], by_path, "memory_kb", "KB", ".1f"),
              *_front("energy", selected["pareto_energy"], by_path, "energy_uj", "µJ/image", ".3f"), "", "Files:"]
    if chosen is not None:
        lines.append(f"  chosen run   {portable(out / chosen['path'])}  (metrics.json, checkpoint.pt, export.pt)")
    deploy = (f"{portable(out / deployed['folder'])}  ({deployed['note']})" if "folder" in deployed
              else f"skipped: {deployed['skipped']}")
    lines += [f"  report       {portable(out / 'report')}  (summary.md, runs.csv, figures)",
              textwrap.fill(deploy, 110, initial_indent="  deploy       ", subsequent_indent=" " * 15),
              f"  this table   {portable(out / 'summary.txt')}"]
    return "\n".join(lines) + "\n"
