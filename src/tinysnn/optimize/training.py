"""The training stages' commands: ``tinysnn.train --multirun`` into the stage's folder.

Each training stage is one Hydra sweep run as a subprocess, ``hydra.sweep.dir=<out>/<stage>``,
so it inherits the train app's resume logic (a re-run skips the jobs whose metrics.json is
finished and records the same overrides) and its launchers (joblib here, SLURM via submitit).
Every sweep job gets a readable folder (``hydra.sweep.subdir``) whose name is known before it
runs, so a stage can check that each of its runs finished.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import Launcher, OptimizeConfig, QuantStudyConfig
from ..results import RecordError
from .stages import Outputs, StageFailed


@dataclass(frozen=True)
class Sweep:
    """One tinysnn.train --multirun: its task overrides, job count and run folders (relative to the sweep)."""

    #: what the runs depend on: the stage's inputs (Hydra's own settings excluded)
    overrides: list[str]
    jobs: int
    #: hydra.sweep.subdir, resolved per job by Hydra
    subdir: str
    runs: list[str]


def _common(config: OptimizeConfig, network: list[str], progress: bool) -> list[str]:
    """Network, protocol and seeds: the network's groups, the preset's ``train``, your ``extra``, the seeds.

    Progress bars in the FP32 stages (one job each) only: the quantization stages may run jobs in
    parallel, whose bars would garble each other's. The choice is fixed per stage, not per launcher,
    since the train app resumes only jobs whose overrides are the same.
    """
    return [*network, f"run.progress={str(progress).lower()}", *config.train, *config.extra,
            f"run.replicas={config.seeds}"]


def tinysnn_network(config: OptimizeConfig) -> list[str]:
    """tinySNN as measured on this dataset (conf/experiment/tinysnn_<dataset>.yaml)."""
    return [f"experiment=tinysnn_{config.dataset.value}"]


def baseline_network(config: OptimizeConfig) -> list[str]:
    """Diehl & Cook's network with pair-wise STDP: the FP32 model savings are measured against."""
    return [f"dataset={config.dataset.value}", "model=diehl_cook", "learning=pair_stdp"]


def fp32_sweep(config: OptimizeConfig, network: list[str], name: str) -> Sweep:
    return Sweep(_common(config, network, progress=True), 1, name, [name])


def _quant_overrides(config: OptimizeConfig, study: QuantStudyConfig, scheme: str,
                     reference: Path) -> tuple[list[str], list[str], list[str]]:
    """The overrides both schemes start with (tinySNN, the scheme, the reference) and the study's
    rounding and target names."""
    roundings, targets = [r.value for r in study.roundings], [t.value for t in study.targets]
    overrides = [*_common(config, tinysnn_network(config), progress=False), f"scheme={scheme}",
                 f"quant.reference={reference}"]
    return overrides, roundings, targets


def ptq_sweep(config: OptimizeConfig, reference: Path) -> Sweep:
    """Every width × rounding × target, each quantizing the FP32 reference's seeds (no retraining)."""
    study = config.ptq
    overrides, roundings, targets = _quant_overrides(config, study, "ptq", reference)
    overrides += [f"quant.bits={','.join(map(str, study.bits))}", f"rounding={','.join(roundings)}",
                  f"target={','.join(targets)}"]
    runs = [f"q{b}_{t}_{r}" for b in study.bits for t in targets for r in roundings]
    subdir = "q${quant.bits}_${hydra:runtime.choices.target}_${hydra:runtime.choices.rounding}"
    return Sweep(overrides, len(runs), subdir, runs)


def itq_sweep(config: OptimizeConfig, reference: Path) -> Sweep:
    """One grid simulation per target: every width × rounding × seed trained side by side as replicas."""
    study = config.itq
    overrides, roundings, targets = _quant_overrides(config, study, "itq", reference)
    overrides += [f"quant.grid_bits=[{','.join(map(str, study.bits))}]",
                  f"quant.grid_roundings=[{','.join(roundings)}]", f"target={','.join(targets)}"]
    runs = [f"{t}/q{b}_{r}" for t in targets for b in study.bits for r in roundings]
    return Sweep(overrides, len(targets), "${hydra:runtime.choices.target}", runs)


def _launcher(config: OptimizeConfig, jobs: int) -> list[str]:
    """Hydra's launcher for a sweep of ``jobs`` jobs (one job needs no parallel launcher here)."""
    if config.launcher is Launcher.joblib and jobs > 1:
        return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={min(config.n_jobs, jobs)}", *config.launcher_args]
    if config.launcher in (Launcher.slurm, Launcher.submitit_local):
        return [f"hydra/launcher={config.launcher.value}", *config.launcher_args]
    return ["hydra/launcher=basic"]


def command(config: OptimizeConfig, sweep: Sweep, folder: Path) -> list[str]:
    return [sys.executable, "-m", "tinysnn.train", "-m", *sweep.overrides, f"hydra.sweep.dir={folder}",
            f"hydra.sweep.subdir={sweep.subdir}", *_launcher(config, sweep.jobs)]


def sweep_progress(folder: Path, sweep: Sweep) -> str | None:
    """How far an interrupted sweep in ``folder`` got: its finished runs and where each saved training
    state stands (None when nothing is done yet)."""
    from ..trained import FILE_NAME, saved_images  # torch.load: only when a stage resumes

    finished = sum((folder / run / "metrics.json").is_file() for run in sweep.runs)
    parts = [f"{finished} of {len(sweep.runs)} run(s) finished"] if finished else []
    for state_path in sorted(folder.rglob(FILE_NAME)):
        saved = saved_images(state_path)
        if saved is not None:
            images, complete = saved
            where = "trained, evaluation under way" if complete else f"training saved at image {images:,}"
            parts.append(f"{state_path.parent.relative_to(folder)}: {where}")
    return "; ".join(parts) or None


def run_sweep(stage: str, argv: list[str], folder: Path, sweep: Sweep, out: Path, log: Path | None = None) -> Outputs:
    """Run the sweep (its output streams through, or into ``log``), then check that every run finished."""
    if log is None:
        done = subprocess.run(argv)
    else:
        with log.open("a") as sink:
            done = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise StageFailed(stage, "tinysnn.train", done.returncode, "above" if log is None else f"in {log}")
    missing = [run for run in sweep.runs if not (folder / run / "metrics.json").is_file()]
    if missing:
        raise RecordError(f"stage {stage}: tinysnn.train ended without writing {folder / missing[0]}/metrics.json "
                          f"({len(missing)} run(s) missing); run the same command again to redo them")
    return {"runs": [str((folder / run).relative_to(out)) for run in sweep.runs]}
