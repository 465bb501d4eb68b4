#!/usr/bin/env python
"""How long the paper's whole study takes: a PROJECTION from short measured slices, not a measured study.

``python -m tinysnn.optimize optimize=<preset>`` runs four training stages (tinysnn.optimize.flow):
FP32 tinySNN over the seeds, the FP32 baseline, every PTQ job and one ITQ grid simulation per
target; they take nearly all of its time (ranges, select, report and deploy take seconds to a
minute and are not projected). This script takes the preset's stages and their exact tinysnn.train overrides from
the optimize package itself (``flow.build``, ``training.*_sweep`` and ``training.command``), runs
each kind of job with the image counts cut to a slice — ``run.n_train``, ``run.n_label``,
``run.n_val`` and ``run.n_test`` set to ``--images`` through the study's ``extra`` overrides, one
job at a time (``launcher=basic``) — and reads the seconds of each pass (train, label, val, test)
from the runs' metrics.json. As optimize does, PTQ and ITQ quantize an FP32 tinySNN run: the
smaller timed FP32 slice, which runs first, is their ``quant.reference``.

Kinds measured: FP32 tinySNN, FP32 baseline, one PTQ job per target and each target's ITQ grid
simulation (every width × rounding × seed as its replicas). One PTQ job stands for all jobs of
its target (the preset's first width, stochastic rounding where the preset lists it: the one
that draws random numbers every step), on the ASSUMPTION that the PTQ jobs of a target cost the
same per image whatever their width and rounding; the projection still counts every PTQ job.

torch.compile: the slope between two slices, after a warm-up where kernels are built. A kind whose
full-size job compiles runs one untimed slice of ``--images`` first: it fills the inductor cache
where that is cold, so no 30–90 s kernel build lands in a measurement. Then every kind is timed
at ``--images`` and at twice as many, and a pass's seconds per image is the slope between the two
(from metrics.json's per-pass seconds): even with a warm cache a process spends seconds tracing
and loading its kernels, besides starting Python, torch and Hydra, which would swamp a slice's
few hundred images; the slope cancels those fixed costs. Neither alone would do: the slope alone
puts a cold build into the first slice only, a warm cache alone leaves the tracing in the rates.
Slices evaluate in batches of at most ``--images`` images, so both timed slices build the same
kernel shapes, and ``sim.integrator`` is pinned to what ``auto`` picks for the full-size job
(tinysnn.sim.auto), since auto would step through passes as short as a slice's.

Projection: a job's hours are the full-size images of each pass (read from the composed train
config and the data: train = the training set less ``run.n_val``, × epochs; label =
``run.n_label``; val = ``run.n_val``; test = the test set) × that pass's measured seconds per
image. A stage's wall time is its jobs' sum divided by the jobs it runs side by side
(``launcher=joblib``: ``n_jobs`` of the preset; other launchers count as one at a time), at least
its longest job, plus the fixed seconds of a fresh process ("fixed s/process": the smaller
slice's wall time less its images' share) once: the stage's command runs its jobs in one process, or in
``n_jobs`` joblib workers side by side, each of which starts and traces its kernels once. Stages
run one after another; the study's total is their sum.

Limitations: what each further job in a worker repeats (loading the data and its reference,
writing its runs) is not counted; a slice's networks are barely trained, so their firing (and
retries) differ from the full study's; evaluation batches of ``--images`` images cost more per
image than the full runs' batches of ``run.eval_batch`` (``--images 1000`` evaluates in the full
runs' batches, at the price of longer slices); side-by-side jobs are assumed to keep their
measured speed (one core each); timings on a machine busy with other jobs are noisy.

    python scripts/bench_study.py [--preset paper_mnist] [--preset paper_fashion_mnist] [--images 100]
                                  [--stages fp32 baseline ptq itq] [--out study.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from tinysnn.app import guarded
from tinysnn.config import (
    Integrator,
    Launcher,
    OptimizeConfig,
    QuantStudyConfig,
    QuantTarget,
    Rounding,
    Rule,
    Scheme,
    Topology,
    TrainConfig,
    register_configs,
    validate,
)
from tinysnn.optimize.__main__ import check_preset
from tinysnn.optimize.flow import TRAINING_STAGES, build
from tinysnn.optimize.training import (
    Sweep,
    baseline_network,
    command,
    fp32_sweep,
    itq_sweep,
    ptq_sweep,
    tinysnn_network,
)
from tinysnn.pipeline import load_splits
from tinysnn.record import read_record
from tinysnn.results import write_json
from tinysnn.runtime import resolve_device
from tinysnn.sim.auto import pays_to_compile

PASSES = ("train", "label", "val", "test")
#: the speed issue's target for one preset's whole study, hours
TARGET_HOURS = 2.0
#: the folder of the FP32 tinySNN slices, whose smaller timed slice PTQ and ITQ quantize
REFERENCE_KIND = "fp32"


@dataclass(frozen=True)
class Kind:
    """One kind of job of a training stage, and what its full-size job looks like."""

    stage: str
    name: str
    #: its folder in the work folder
    key: str
    #: jobs of this kind in the preset
    jobs: int
    #: the kind's one representative job in a study: the preset's, or a slice's
    sweep_of: Callable[[OptimizeConfig], Sweep]
    #: full-size images per pass (the job trains only when its slice does)
    images: dict[str, int]
    #: what ``sim.integrator=auto`` runs the full-size job with
    integrator: Integrator
    eval_batch: int


@dataclass(frozen=True)
class Slice:
    """One measured slice: images and seconds per pass (summed over the job's runs), and its wall time."""

    images: dict[str, int]
    seconds: dict[str, float]
    wall: float
    replicas: int
    #: the integrator each pass recorded
    integrators: dict[str, str | None]


# --- the preset's jobs --------------------------------------------------------------------


def compose_study(preset: str, out: Path) -> OptimizeConfig:
    """The preset as ``python -m tinysnn.optimize optimize=<preset> out=<out>`` composes it."""
    check_preset([f"optimize={preset}"])
    config = OmegaConf.to_object(compose("optimize", overrides=[f"optimize={preset}", f"out={out}"]))
    assert isinstance(config, OptimizeConfig)
    return config


def full_images(train: TrainConfig) -> dict[str, int]:
    """Images of each pass of the full-size job, as tinysnn.pipeline splits the data."""
    splits = load_splits(train)
    return {"train": len(splits.train) * train.run.epochs, "label": len(splits.label),
            "val": len(splits.val) if splits.val is not None else 0, "test": len(splits.test)}


def full_integrator(train: TrainConfig, images: dict[str, int]) -> Integrator:
    """What ``sim.integrator=auto`` runs the full-size job with (tinysnn.sim.auto.choose_integrator):
    training jobs decide by their training pass, PTQ by its shortest inference pass."""
    if train.sim.integrator is not Integrator.auto:
        return train.sim.integrator
    quant = train.quant
    neurons = quant.active and quant.target is QuantTarget.wn
    training = quant.scheme is not Scheme.ptq
    length = images["train"] if training else min(n for p, n in images.items() if p != "train" and n)
    device = resolve_device(train.device.value)
    # a CUDA generator cannot draw a qWN kernel's stochastic rounding ahead
    stochastic_on_cuda = device.type == "cuda" and neurons and any(
        v.rounding is Rounding.stochastic for v in quant.variants())
    applies = train.model.topology is Topology.tinysnn and train.learning.rule is Rule.adaptive
    if pays_to_compile(applies, neurons, not stochastic_on_cuda, length, training, device.type):
        return Integrator.compiled
    return Integrator.step


def costliest(roundings: list[Rounding]) -> Rounding:
    """The PTQ rounding that stands for its target's jobs: stochastic where listed (it draws every step)."""
    return Rounding.stochastic if Rounding.stochastic in roundings else roundings[0]


def kinds_of(config: OptimizeConfig, reference: Path, stages: set[str]) -> list[tuple[str, str, str, int, Callable]]:
    """(stage, key, name, jobs, sweep_of) of every kind of job of the chosen stages, FP32 tinySNN first."""
    found: list[tuple[str, str, str, int, Callable]] = []
    if "fp32" in stages:
        found.append(("fp32", REFERENCE_KIND, "FP32 tinySNN", 1,
                      lambda c: fp32_sweep(c, tinysnn_network(c), "tinysnn")))
    if "baseline" in stages:
        found.append(("baseline", "baseline", "FP32 baseline", 1,
                      lambda c: fp32_sweep(c, baseline_network(c), "diehl_cook")))
    for target in config.ptq.targets if "ptq" in stages else []:
        study = replace(config.ptq, targets=[target])
        one = QuantStudyConfig(bits=study.bits[:1], roundings=[costliest(study.roundings)], targets=[target])
        found.append(("ptq", f"ptq-{target.value}", f"PTQ q{target.value.upper()}",
                      ptq_sweep(replace(config, ptq=study), reference).jobs,
                      lambda c, one=one: ptq_sweep(replace(c, ptq=one), reference)))
    for target in config.itq.targets if "itq" in stages else []:
        study = replace(config.itq, targets=[target])
        found.append(("itq", f"itq-{target.value}", f"ITQ q{target.value.upper()} grid", 1,
                      lambda c, study=study: itq_sweep(replace(c, itq=study), reference)))
    return found


def check_counts(config: OptimizeConfig, reference: Path, kinds: list[Kind]) -> None:
    """Every job of the preset's quantization stages belongs to one kind."""
    for stage, sweep in (("ptq", ptq_sweep), ("itq", itq_sweep)):
        counted = sum(k.jobs for k in kinds if k.stage == stage)
        assert not counted or counted == sweep(config, reference).jobs, f"{stage}: the kinds miss some jobs"


def plan(preset: str, work: Path, stages: list[str]) -> tuple[OptimizeConfig, list[Kind]]:
    """The preset's study and the kinds of job to measure (checks the preset and the data before any run)."""
    config = compose_study(preset, work)
    present = {stage.name for stage in build(config, work) if stage.command and stage.name in TRAINING_STAGES}
    chosen = present & set(stages)
    if chosen & {"ptq", "itq"}:
        chosen.add(REFERENCE_KIND)  # their reference
    reference = work / REFERENCE_KIND / "small" / fp32_sweep(config, tinysnn_network(config), "tinysnn").runs[0]
    kinds = []
    for stage, key, name, jobs, sweep_of in kinds_of(config, reference, chosen):
        train = validate(compose("config", overrides=sweep_of(config).overrides))
        images = full_images(train)
        kinds.append(Kind(stage, name, key, jobs, sweep_of, images, full_integrator(train, images),
                          train.run.eval_batch))
    check_counts(config, reference, kinds)
    return config, kinds


# --- measuring ----------------------------------------------------------------------------


def slice_overrides(kind: Kind, images: int, batch: int) -> list[str]:
    """The slice's image counts (no validation split where the preset has none), batch and integrator."""
    return [f"run.n_train={images}", f"run.n_label={images}", f"run.n_val={images if kind.images['val'] else 0}",
            f"run.n_test={images}", f"run.eval_batch={batch}", f"sim.integrator={kind.integrator.value}"]


def read_slice(folder: Path, sweep: Sweep, wall: float) -> Slice:
    """Per pass, the images of one run and the seconds of all the job's runs (a grid's training, once)."""
    records = [read_record(folder / run / "metrics.json") for run in sweep.runs]
    first = records[0]
    seconds = {"train": first["train"]["seconds"],
               **{p: sum(r[p]["seconds"] for r in records) for p in PASSES if p != "train"}}
    replicas = first["grid"]["replicas"] if first.get("grid") else first["replicas"]
    return Slice({p: first[p]["images"] for p in PASSES}, seconds, wall, replicas,
                 {p: first[p].get("integrator") for p in PASSES})


def tail(log: Path, lines: int = 20) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def run_slice(config: OptimizeConfig, kind: Kind, images: int, batch: int, folder: Path, what: str) -> Slice:
    """Run the kind's job on ``images`` images per pass into ``folder``; its output goes to a log file."""
    study = replace(config, launcher=Launcher.basic, extra=[*config.extra, *slice_overrides(kind, images, batch)])
    sweep = kind.sweep_of(study)
    log = folder.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {kind.name}: {what}, {images} images per pass …", end="", flush=True)
    start = time.perf_counter()
    with log.open("w") as output:
        returncode = subprocess.run(command(study, sweep, folder), stdout=output, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    print(f" {wall:.1f} s", flush=True)
    if returncode != 0:
        sys.stderr.write(tail(log))
        raise SystemExit(f"error: the {kind.name} slice failed: tinysnn.train exited with status {returncode} "
                         "(its last lines are above); fix the cause and run the bench again")
    return read_slice(folder, sweep, wall)


def measure(config: OptimizeConfig, kind: Kind, images: int, work: Path) -> tuple[Slice, Slice]:
    """The timed slices of ``images`` and twice as many images, after an untimed one where kernels are built."""
    batch = min(kind.eval_batch, images)
    folder = work / kind.key
    if kind.integrator is Integrator.compiled:
        run_slice(config, kind, images, batch, folder / "warm", "warm-up (untimed)")
    return (run_slice(config, kind, images, batch, folder / "small", "timed"),
            run_slice(config, kind, 2 * images, batch, folder / "large", "timed"))


# --- projecting ---------------------------------------------------------------------------


def per_image(small: Slice, large: Slice) -> dict[str, float | None]:
    """Seconds per image of each pass: the slope between the slices (None: the job has no such pass)."""
    return {p: (large.seconds[p] - small.seconds[p]) / (large.images[p] - small.images[p])
            if large.images[p] > small.images[p] else None for p in PASSES}


def kind_row(preset: str, kind: Kind, small: Slice, large: Slice) -> dict[str, Any]:
    """The measured rates of one kind, its fixed seconds and its projected hours per job (images only)."""
    rates = per_image(small, large)
    fixed = max(0.0, small.wall - sum(r * small.images[p] for p, r in rates.items() if r is not None))
    job_seconds = sum(r * kind.images[p] for p, r in rates.items() if r is not None)
    return {"preset": preset, "stage": kind.stage, "kind": kind.name, "jobs": kind.jobs,
            "replicas_per_job": small.replicas, "integrator": kind.integrator.value,
            "integrators_recorded": small.integrators, "s_per_image": rates, "fixed_s_per_process": fixed,
            "full_images": {p: n for p, n in kind.images.items() if rates[p] is not None},
            "slice_images": {"small": small.images, "large": large.images},
            "slice_wall_s": {"small": small.wall, "large": large.wall}, "job_hours": job_seconds / 3600}


def stage_rows(config: OptimizeConfig, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each stage's wall time: its jobs' hours shared among the launcher's slots (at least its longest
    job), and the fixed seconds of a process once."""
    stages = []
    for stage in dict.fromkeys(row["stage"] for row in rows):
        mine = [row for row in rows if row["stage"] == stage]
        jobs = sum(row["jobs"] for row in mine)
        slots = min(config.n_jobs, jobs) if config.launcher is Launcher.joblib else 1
        serial = sum(row["jobs"] * row["job_hours"] for row in mine)
        fixed = max(row["fixed_s_per_process"] for row in mine) / 3600
        stages.append({"preset": mine[0]["preset"], "stage": stage, "jobs": jobs, "side_by_side": slots,
                       "fixed_hours": fixed,
                       "projected_hours": max(serial / slots, max(row["job_hours"] for row in mine)) + fixed})
    return stages


# --- output -------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def kinds_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| preset | stage | job kind | jobs | replicas/job | integrator | train s/img | label s/img | "
             "val s/img | test s/img | fixed s/process | h/job (images) |", "|---|---|---|---:|---:|---|" + "---:|" * 6]
    for row in rows:
        rates = " | ".join(_rate(row["s_per_image"][p]) for p in PASSES)
        lines.append(f"| {row['preset']} | {row['stage']} | {row['kind']} | {row['jobs']} | {row['replicas_per_job']}"
                     f" | {row['integrator']} | {rates} | {row['fixed_s_per_process']:.1f} | {row['job_hours']:.3f} |")
    return "\n".join(lines)


def stages_table(stages: list[dict[str, Any]]) -> str:
    lines = ["| preset | stage | jobs | side by side | of which fixed h | projected wall h |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {s['preset']} | {s['stage']} | {s['jobs']} | {s['side_by_side']} | {s['fixed_hours']:.2f} | "
              f"{s['projected_hours']:.2f} |" for s in stages]
    return "\n".join(lines)


def verdict(preset: str, hours: float, images: int, stages: list[str]) -> str:
    within = "within" if hours <= TARGET_HOURS else "OVER"
    return (f"{preset}: projected {hours:.2f} h for the training stages {', '.join(stages)} — {within} the "
            f"{TARGET_HOURS:g} h target (a projection from measured {images}- and {2 * images}-image slices, "
            "not a measured study; ranges, select, report and deploy not included)")


def header(images: int) -> str:
    cpu = platform.processor() or platform.machine()
    return (f"tinysnn study bench: PROJECTED wall time of `python -m tinysnn.optimize optimize=<preset>` from its "
            f"training stages' own commands run on slices of {images} and {2 * images} images per pass (after an "
            f"untimed warm-up slice where the job compiles)\ntorch {torch.__version__}, CPU {cpu} ({os.cpu_count()} "
            f"cores), load average {os.getloadavg()[0]:.2f} (other jobs share the cores)\n")


# --- main ---------------------------------------------------------------------------------


def study(preset: str, config: OptimizeConfig, kinds: list[Kind], images: int, work: Path) -> dict[str, Any]:
    """Measure every kind of one preset and project its stages."""
    print(f"{preset}: measuring {len(kinds)} kind(s) of job", flush=True)
    rows = [kind_row(preset, kind, *measure(config, kind, images, work)) for kind in kinds]
    stages = stage_rows(config, rows)
    return {"preset": preset, "dataset": config.dataset.value, "kinds": rows, "stages": stages,
            "projected_hours": sum(s["projected_hours"] for s in stages), "target_hours": TARGET_HOURS}


def bench(args: argparse.Namespace, work: Path) -> None:
    register_configs()
    with initialize_config_module(config_module="tinysnn.conf", version_base="1.3"):
        plans = {preset: plan(preset, work / preset, args.stages) for preset in args.preset}
    print(header(args.images), flush=True)
    results = [study(preset, config, kinds, args.images, work / preset) for preset, (config, kinds) in plans.items()]
    rows = [row for result in results for row in result["kinds"]]
    print(f"\nmeasured seconds per image (slope between the slices) and projected hours per job\n\n"
          f"{kinds_table(rows)}")
    print(f"\nprojected wall time per stage\n\n{stages_table([s for r in results for s in r['stages']])}\n")
    for result in results:
        print(verdict(result["preset"], result["projected_hours"], args.images,
                      [s["stage"] for s in result["stages"]]))
    if args.out:
        write_json(args.out, {"what": "projection from measured slices, not a measured study",
                              "slice_images": [args.images, 2 * args.images], "load_average": os.getloadavg()[0],
                              "studies": results})
        print(f"rows written to {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="conf/optimize/ preset, repeatable (default paper_mnist)")
    parser.add_argument("--images", type=int, default=100,
                        help="images per pass of the smaller timed slice (the larger has twice as many)")
    parser.add_argument("--stages", nargs="+", choices=TRAINING_STAGES, default=list(TRAINING_STAGES),
                        help="training stages to measure (ptq and itq also measure fp32, their reference)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON")
    args = parser.parse_args()
    args.preset = args.preset or ["paper_mnist"]
    if args.images < 1:
        parser.error("--images must be >= 1")
    with tempfile.TemporaryDirectory(prefix="tinysnn-bench-study-") as work:
        guarded(lambda: bench(args, Path(work)))


if __name__ == "__main__":
    main()
