"""The sweep report: ``python -m tinysnn.report sweeps=[<sweep dir>,...] out=docs/report selection.mu=0.1``.

From every finished run under the folders it writes, atomically:

* ``runs.csv`` — one row per run (dataset, model, scheme, precision, rounding, target, training
  images, accuracy, memory, energy per image for training and inference, reward at μ);
* ``summary.md`` — per dataset: the accuracy grid per scheme, memory and energy savings, and
  the selection (ranking, Pareto fronts, choice per μ) of ``tinysnn.selection``;
* figures like the paper's: ``fig6_accuracy.png`` (accuracy per precision and scheme),
  ``fig7_memory.png`` (memory per precision, qW vs qWN), ``fig8_energy.png`` (energy per image
  for training and inference), ``fig9_reward.png`` (reward against μ, chosen models marked).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from .app import command
from .config import ConfigError, ReportConfig, SelectionConfig
from .record import Candidate, load_candidates
from .results import atomic_write
from .selection import choose, reward, selection_report

ROUNDINGS = ("truncate", "nearest", "stochastic")
CSV_FIELDS = ["dataset", "model", "scheme", "bits", "target", "rounding", "train_images", "accuracy",
              "memory_bytes", "memory_norm", "inference_uj_per_image", "training_uj_per_image", "reward", "path"]


def _precision(c: Candidate) -> str:
    return "FP32" if c.bits is None else str(c.bits)


def runs_csv(candidates: list[Candidate], mu: float) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for c in sorted(candidates, key=lambda c: (c.dataset, c.scheme, -(c.bits or 64), c.target, c.rounding, c.path)):
        writer.writerow([c.dataset, c.topology, c.scheme, _precision(c), c.target if c.bits else "",
                         c.rounding if c.bits else "", c.train_images, f"{c.accuracy:.4f}", f"{c.memory_bytes:.0f}",
                         f"{c.memory_norm:.4f}", "" if c.inference_uj is None else f"{c.inference_uj:.4f}",
                         "" if c.training_uj is None else f"{c.training_uj:.4f}", f"{reward(c, mu):.4f}", c.path])
    return buffer.getvalue()


def _best_by_cell(candidates: Iterable[Candidate]) -> dict[tuple[str, str, str, int], Candidate]:
    """(scheme, target, rounding, bits) → the run trained on most images (the full epoch where there is one)."""
    cells: dict[tuple[str, str, str, int], Candidate] = {}
    for c in candidates:
        if c.bits is None:
            continue
        key = (c.scheme, c.target, c.rounding, c.bits)
        if key not in cells or c.train_images > cells[key].train_images:
            cells[key] = c
    return cells


def accuracy_tables(candidates: list[Candidate]) -> str:
    """Per scheme, rows (target, rounding), columns precision; ITQ cells name their training images."""
    cells = _best_by_cell(candidates)
    out = []
    for scheme in ("ptq", "itq"):
        widths = sorted({k[3] for k in cells if k[0] == scheme}, reverse=True)
        if not widths:
            continue
        fp32 = sorted({f"{c.topology} {100 * c.accuracy:.2f}"
                       + (f" ({c.train_images / 1000:g}k)" if scheme == "itq" else "")
                       for c in candidates if c.bits is None and c.scheme == scheme})
        out += [f"**{scheme.upper()}** (test accuracy %; FP32 {', '.join(fp32) or 'n/a'})", "",
                "| target | rounding | " + " | ".join(f"{w} bit" for w in widths) + " |",
                "|---|---|" + "---:|" * len(widths)]
        for target in ("w", "wn"):
            for rounding in ROUNDINGS:
                row = []
                for w in widths:
                    c = cells.get((scheme, target, rounding, w))
                    note = f" ({c.train_images / 1000:g}k)" if c is not None and scheme == "itq" else ""
                    row.append("" if c is None else f"{100 * c.accuracy:.2f}{note}")
                if any(row):
                    out.append(f"| q{target.upper()} | {rounding} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def _fp32_reference(candidates: list[Candidate], topology: str) -> Candidate | None:
    """The FP32 run of ``topology`` to compare against: PTQ's re-evaluated reference, else the longest-trained."""
    fp32 = [c for c in candidates if c.bits is None and c.topology == topology and c.inference_uj is not None]
    return max(fp32, key=lambda c: (c.scheme == "ptq", c.train_images)) if fp32 else None


def savings_table(candidates: list[Candidate]) -> str:
    """Memory and inference energy per precision and target, against the FP32 tinySNN and FP32 baseline."""
    references = [(name, ref) for name, ref in (("FP32 tinySNN", _fp32_reference(candidates, "tinysnn")),
                                                ("FP32 baseline", _fp32_reference(candidates, "diehl_cook")))
                  if ref is not None]
    if not references:
        return "(no FP32 run to compare with)"
    rows: dict[tuple[int, str], list[Candidate]] = defaultdict(list)
    for c in candidates:
        if c.bits is not None and c.inference_uj is not None:
            rows[(c.bits, c.target)].append(c)
    lines = [f"{name}: {ref.name}, {ref.memory_bytes / 1024:.1f} KB, {ref.inference_uj:.2f} µJ per inference "
             f"({ref.path})." for name, ref in references]
    header = "| precision | target | memory KB | inference µJ/img (mean) | " + " | ".join(
        f"memory saving vs {name} | energy saving vs {name}" for name, _ in references) + " |"
    lines += ["", header, "|---:|---|---:|---:|" + "---:|---:|" * len(references)]
    for (bits, target), runs in sorted(rows.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        energy = sum(c.inference_uj for c in runs if c.inference_uj is not None) / len(runs)
        memory = runs[0].memory_bytes
        savings = " | ".join(f"{ref.memory_bytes / memory:.2f}× | {ref.inference_uj / energy:.2f}×"  # type: ignore[operator]
                             for _, ref in references)
        lines.append(f"| {bits} | q{target.upper()} | {memory / 1024:.1f} | {energy:.2f} | {savings} |")
    return "\n".join(lines)


def summary_markdown(candidates: list[Candidate], config: SelectionConfig) -> str:
    out = ["# Sweep report", "",
           f"{len(candidates)} runs. Accuracy: test set, {config.readout.replace('_', '-')} readout. Memory: paper "
           "Eq. 4. Energy: operation-count model (Horowitz 45 nm), µJ per image. Reward R = acc − μ·M_q/M_0 "
           f"(paper Eq. 3), μ = {config.mu:g}.", ""]
    for dataset in sorted({c.dataset for c in candidates}):
        mine = [c for c in candidates if c.dataset == dataset]
        out += [f"## {dataset}", "", "### Accuracy", "", accuracy_tables(mine), "### Memory and energy", "",
                savings_table(mine), ""]
    out += ["# Selection", "", selection_report(candidates, config)]
    return "\n".join(out)


# --- figures ------------------------------------------------------------------------------


def _figures(candidates: list[Candidate], config: SelectionConfig, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({c.dataset for c in candidates})
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
        written.append(path)

    # Fig. 6: accuracy per precision, one panel per dataset × scheme, a line per (target, rounding)
    schemes = [s for s in ("ptq", "itq") if any(c.scheme == s and c.bits for c in candidates)]
    fig, axes = plt.subplots(len(datasets), len(schemes), figsize=(5.5 * len(schemes), 3.6 * len(datasets)),
                             squeeze=False)
    for i, dataset in enumerate(datasets):
        mine = [c for c in candidates if c.dataset == dataset]
        cells = _best_by_cell(mine)
        for j, scheme in enumerate(schemes):
            ax = axes[i][j]
            widths = sorted({k[3] for k in cells if k[0] == scheme}, reverse=True)
            for target, style in (("w", "-"), ("wn", "--")):
                for rounding, marker in zip(ROUNDINGS, "vos"):
                    # NaN where a width was not run: the line breaks instead of bridging the gap
                    accuracy = [cells[(scheme, target, rounding, w)].accuracy * 100
                                if (scheme, target, rounding, w) in cells else float("nan") for w in widths]
                    if any(a == a for a in accuracy):
                        ax.plot(range(len(widths)), accuracy, style, marker=marker,
                                label=f"q{target.upper()} {rounding}")
            ax.set_xticks(range(len(widths)), [str(w) for w in widths])
            fp32 = [c.accuracy * 100 for c in mine if c.bits is None and c.scheme == scheme]
            if fp32:
                ax.axhline(max(fp32), color="grey", lw=0.8, label="FP32")
            ax.set(title=f"{dataset}, {scheme.upper()}", xlabel="bits", ylabel="accuracy %", ylim=(0, 100))
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    save(fig, "fig6_accuracy.png")

    # Fig. 7: memory per precision for qW and qWN (it depends on the architecture only)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for target, color in (("w", "tab:blue"), ("wn", "tab:orange")):
        sizes = sorted({(c.bits, c.memory_bytes) for c in candidates if c.bits and c.target == target}, reverse=True)
        ax.plot([str(b) for b, _ in sizes], [m / 1024 for _, m in sizes], marker="o", color=color,
                label=f"q{target.upper()}")
    fp32 = [c.memory_bytes / 1024 for c in candidates if c.bits is None]
    if fp32:
        ax.axhline(max(fp32), color="grey", lw=0.8, label="FP32")
    ax.set(xlabel="bits", ylabel="memory (KB)", title="Memory footprint (Eq. 4)")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, "fig7_memory.png")

    # Fig. 8: energy per image, training and inference, per precision (mean over roundings)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), squeeze=False)
    for ax, phase in zip(axes[0], ("training", "inference")):
        for dataset in datasets:
            for target, style in (("w", "-"), ("wn", "--")):
                per_bits: dict[int, list[float]] = defaultdict(list)
                for c in candidates:
                    value = c.training_uj if phase == "training" else c.inference_uj
                    if c.dataset == dataset and c.bits and c.target == target and value is not None \
                            and (phase == "inference" or c.scheme == "itq"):
                        per_bits[c.bits].append(value)
                if per_bits:
                    bits = sorted(per_bits, reverse=True)
                    ax.plot([str(b) for b in bits], [sum(per_bits[b]) / len(per_bits[b]) for b in bits], style,
                            marker="o", label=f"{dataset} q{target.upper()}")
        ax.set(xlabel="bits", ylabel="µJ per image", title=f"{phase.capitalize()} energy (op-count model)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, "fig8_energy.png")

    # Fig. 9: reward against μ for the best few models, the chosen model at each μ marked
    mus = sorted(set(config.mus) | {config.mu})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        mine = [c for c in candidates if c.dataset == dataset]
        shown = {c.path: c for mu in mus for c in [choose(mine, config, mu)] if c is not None}
        for c in sorted(mine, key=lambda c: -c.accuracy)[:4]:
            shown.setdefault(c.path, c)
        for c in shown.values():
            ax.plot(mus, [reward(c, mu) for mu in mus], lw=1, label=c.name)
        for mu in mus:
            chosen = choose(mine, config, mu)
            if chosen is not None:
                ax.plot([mu], [reward(chosen, mu)], "k*", ms=9)
        ax.set(xlabel="μ", ylabel="reward R", title=f"{dataset}: reward vs μ (★ chosen)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    save(fig, "fig9_reward.png")
    return written


def write_report(candidates: list[Candidate], config: SelectionConfig, out: Path, figures: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "runs.csv", out / "summary.md"]
    table, summary = runs_csv(candidates, config.mu), summary_markdown(candidates, config)
    atomic_write(written[0], lambda tmp: tmp.write_text(table))
    atomic_write(written[1], lambda tmp: tmp.write_text(summary))
    if figures:
        written += _figures(candidates, config, out)
    return written


def _report(config: ReportConfig) -> None:
    candidates = load_candidates([Path(folder) for folder in config.sweeps], config.selection.readout)
    if not candidates:
        raise ConfigError(f"no finished runs under {', '.join(config.sweeps)}")
    for path in write_report(candidates, config.selection, Path(config.out), figures=config.figures):
        print(f"wrote {path}")


main = command("report", _report)

if __name__ == "__main__":
    main()
