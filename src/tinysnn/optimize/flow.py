"""The paper's flow (Fig. 3) for one dataset as a list of stages (tinysnn.optimize.stages runs them).

1. ``baseline``: the FP32 Diehl & Cook network with pair-wise STDP, ``seeds`` seeds as the replicas of
   one simulation (or ``baseline=<run>``);
2. ``fp32``: FP32 tinySNN, the same way (or ``reference=<run>``);
3. ``ranges``: the range analysis of the FP32 tinySNN run, which every format is built from;
4. ``ptq``: post-training quantization of its seeds at every width × rounding × target;
5. ``itq``: in-training quantization, one grid simulation per target (widths × roundings × seeds);
6. ``select``: Eq. 3 on validation accuracy under the constraints, and the Pareto fronts;
7. ``report``: runs.csv, summary.md and the figures (tinysnn.report);
8. ``deploy``: the chosen model's C99 runtime (tinysnn.deploy), checked against the simulator.

Stages 1, 2, 4 and 5 are ``tinysnn.train`` sweeps run as subprocesses (tinysnn.optimize.training);
PTQ and ITQ are left out when their study lists no widths. The baseline trains beside stages 2–5
and PTQ beside ITQ (``Stage.background``), each writing its output to ``<stage>/output.log``. Run
folders are recorded relative to ``out`` (``../`` for given runs outside it), so two studies compare
file for file and a reused record stays valid where the study moves with its runs. The FP32
reference and the given runs enter the stages' keys and commands relative to the working
directory where they lie inside it (``portable``), so a study resumes from a clone elsewhere, run
from its root: its keys, and the train app's saved-state keys, are the same there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..config import ConfigError, OptimizeConfig
from ..record import Candidate, candidate_of, read_record
from ..report import write_report
from ..results import write_json
from ..selection import choose, pareto_front, ranked, reward, violations
from .stages import LOG, Outputs, Stage, StageFailed, digest
from .training import (
    Sweep,
    baseline_network,
    command,
    fp32_sweep,
    itq_sweep,
    ptq_sweep,
    run_sweep,
    sweep_progress,
    tinysnn_network,
)

TRAINING_STAGES = ("fp32", "baseline", "ptq", "itq")
#: where the deploy stage writes the C sources, inside its folder
C_FOLDER = "c"


def relative(path: Path, out: Path) -> str:
    """``path`` relative to ``out`` (``../`` where it lies outside): how stage outputs name runs, so that a
    reused record stays valid wherever the study's folder and the runs it uses move together."""
    return os.path.relpath(path, out)


def portable(path: Path) -> Path:
    """``path`` relative to the working directory when it lies inside it, else as it is: how stage keys,
    commands and the summary name it (the train app and the ranges stage resolve it against the same
    directory, as a user typing it here would)."""
    path, cwd = Path(os.path.normpath(path)), Path.cwd()
    return path.relative_to(cwd) if path.is_absolute() and path.is_relative_to(cwd) else path


def _given_run(key: str, folder: str, config: OptimizeConfig, topology: str) -> tuple[Path, dict[str, Any]]:
    """A finished FP32 run folder given on the command line, checked before anything runs."""
    path = Path(folder).resolve()
    what = ("tinySNN (model=tinysnn)" if topology == "tinysnn"
            else "Diehl & Cook baseline (model=diehl_cook learning=pair_stdp)")
    if not (path / "metrics.json").is_file():
        raise ConfigError(f"invalid config `{key}`: {path / 'metrics.json'} does not exist; give the folder of a "
                          f"finished FP32 {what} run, or drop {key}= to train one")
    metrics = read_record(path / "metrics.json")
    found = {"dataset": metrics.get("dataset"), "topology": metrics.get("topology"),
             "quantized": bool(metrics.get("quant", {}).get("active"))}
    wanted = {"dataset": config.dataset.value, "topology": topology, "quantized": False}
    if topology == "diehl_cook":  # the paper's baseline learns with pair-wise STDP (an SL-STDP run is not it)
        found["rule"], wanted["rule"] = metrics.get("rule"), "pair_stdp"
    for name, value in wanted.items():
        if found[name] != value:
            raise ConfigError(f"invalid config `{key}`: {path} has {name}={found[name]} but this study needs "
                              f"{name}={value}; give an FP32 {what} run on {config.dataset.value}")
    if key == "reference" and metrics.get("replicas", 1) < config.seeds:
        raise ConfigError(f"invalid config `seeds`: the reference {path} holds {metrics.get('replicas', 1)} seed(s), "
                          f"PTQ of seeds={config.seeds} needs as many; lower seeds or train a reference")
    return path, metrics


def _given_stage(name: str, title: str, path: Path, metrics: dict[str, Any], out: Path) -> Stage:
    """An FP32 stage that uses a finished run: its inputs are the run's folder and its record (ranges aside,
    which the ranges stage may add); its output names the run relative to ``out`` (as trained runs are)."""
    record = {key: value for key, value in metrics.items() if key != "ranges"}
    return Stage(name, f"{title}: the finished run {path}", {"run": str(portable(path)), "record": digest(record)},
                 lambda folder, done: {"runs": [relative(path, out)]})


def _train_stage(name: str, title: str, config: OptimizeConfig, sweep: Sweep, out: Path,
                 depends: tuple[str, ...] = (), background: bool = False) -> Stage:
    argv = command(config, sweep, out / name)

    def work(folder: Path, done: dict[str, Outputs]) -> Outputs:
        return run_sweep(name, argv, folder, sweep, out, folder / LOG if background else None)

    return Stage(name, title, {"overrides": sweep.overrides}, work, depends, command=shlex.join(["python", *argv[1:]]),
                 background=background, progress=lambda folder: sweep_progress(folder, sweep))


def _ranges(reference: Path) -> Outputs:
    """Make sure the reference records its ranges (FP32 runs do; older ones get them from tinysnn.ranges)."""
    metrics = read_record(reference / "metrics.json")
    if "ranges" in metrics:
        print(f"    {reference}: ranges recorded by the FP32 run", flush=True)
        return {"ranges": "recorded by the FP32 run"}
    from ..ranges import analyse  # the simulator, imported only for an older run without ranges

    metrics["ranges"] = analyse(reference).to_dict()
    write_json(reference / "metrics.json", metrics)
    print(f"    {reference}: ranges added (its labelling pass repeated with its checkpoint)", flush=True)
    return {"ranges": "added by tinysnn.ranges"}


def _runs(done: dict[str, Outputs], out: Path) -> list[Path]:
    return [Path(os.path.normpath(out / run)) for name in TRAINING_STAGES if name in done for run in done[name]["runs"]]


def candidates(done: dict[str, Outputs], out: Path) -> list[Candidate]:
    """Every run of the training stages, as selection weighs it."""
    found = [candidate_of(run / "metrics.json") for run in _runs(done, out)]
    return [c for c in found if c is not None]


def _row(c: Candidate, config: OptimizeConfig, out: Path) -> dict[str, Any]:
    name = f"{c.name} (baseline)" if c.topology == "diehl_cook" else c.name
    return {"path": relative(Path(c.path), out), "name": name, "topology": c.topology, "scheme": c.scheme,
            "bits": c.bits, "target": c.target, "rounding": c.rounding, "seeds": c.replicas,
            "val": c.val_accuracy, "val_std": c.val_accuracy_std, "test": c.accuracy, "test_std": c.accuracy_std,
            "memory_kb": c.memory_bytes / 1024, "memory_norm": c.memory_norm, "energy_uj": c.inference_uj,
            "reward": reward(c, config.mu) if c.val_accuracy is not None else None,
            "violations": violations(c, config.selection())}


def select(config: OptimizeConfig, done: dict[str, Outputs], out: Path) -> Outputs:
    """Eq. 3 on validation accuracy under the constraints: every model ranked, the choice, the Pareto fronts."""
    models = candidates(done, out)
    selection = config.selection()
    chosen = choose(models, selection)
    return {"models": [_row(c, config, out) for c in ranked(models, config.mu)],
            "chosen": relative(Path(chosen.path), out) if chosen else None,
            "pareto_memory": [relative(Path(c.path), out) for c in pareto_front(models, lambda c: c.memory_bytes)],
            "pareto_energy": [relative(Path(c.path), out) for c in pareto_front(models, lambda c: c.inference_uj)]}


def report(config: OptimizeConfig, done: dict[str, Outputs], out: Path, folder: Path) -> Outputs:
    written = write_report(candidates(done, out), config.selection(), folder, figures=config.figures)
    return {"files": [path.name for path in written]}


def has_compiler() -> bool:
    """Whether the deployed C sources can be built here (tinysnn.deploy builds with make and cc)."""
    return shutil.which("cc") is not None and shutil.which("make") is not None


def _not_deployable(model: dict[str, Any] | None) -> str | None:
    """Why tinysnn.deploy cannot reproduce the chosen model on a device (None: it can)."""
    if model is None:
        return "no model meets the constraints"
    if model["topology"] != "tinysnn":
        return f"the chosen model is {model['topology']}; the C runtime implements tinySNN"
    if model["bits"] is None:
        return "the chosen model is FP32; deployment writes the fixed-point models"
    if model["rounding"] == "stochastic":
        return ("the chosen model rounds stochastically (torch's generator), which the C runtime does not "
                "reproduce; python -m tinysnn.deploy deploys a truncate or nearest run")
    return None


def deploy(config: OptimizeConfig, done: dict[str, Outputs], out: Path, folder: Path) -> Outputs:
    """The chosen model's C99 sources, verified on ``deploy_images`` test images where a compiler is present."""
    picked = done["select"]["chosen"]
    model = next((m for m in done["select"]["models"] if m["path"] == picked), None)
    reason = _not_deployable(model)
    if reason is not None:
        print(f"    deploy skipped: {reason}", flush=True)
        return {"skipped": reason}
    assert model is not None
    verify = config.deploy_images if has_compiler() else 0
    argv = [sys.executable, "-m", "tinysnn.deploy", f"run_dir={out / model['path']}", f"out={folder / C_FOLDER}",
            f"verify_images={verify}"]
    print(f"    $ {shlex.join(['python', *argv[1:]])}", flush=True)
    returncode = subprocess.run(argv).returncode
    if returncode != 0:
        raise StageFailed("deploy", "tinysnn.deploy", returncode)
    note = (f"checked on {verify} test images against the simulator" if verify else
            "sources only: no C compiler (cc) or no make here" if config.deploy_images else
            "not checked (deploy_images=0)")
    return {"folder": relative(folder / C_FOLDER, out), "model": model["name"], "verified": verify, "note": note}


def build(config: OptimizeConfig, out: Path) -> list[Stage]:
    """The stages of the study in ``out``, in order; given runs are checked here, before anything runs."""
    if config.reference is not None:
        reference, metrics = _given_run("reference", config.reference, config, "tinysnn")
        fp32 = _given_stage("fp32", "FP32 tinySNN", reference, metrics, out)
    else:
        sweep = fp32_sweep(config, tinysnn_network(config), "tinysnn")
        reference = out / "fp32" / sweep.runs[0]
        fp32 = _train_stage("fp32", f"FP32 tinySNN, {config.seeds} seed(s)", config, sweep, out)
    if config.baseline is not None:
        baseline = _given_stage("baseline", "FP32 baseline", *_given_run("baseline", config.baseline, config,
                                                                         "diehl_cook"), out)
    else:
        # nothing but the selection needs the baseline: it trains beside the tinySNN stages
        baseline = _train_stage("baseline", f"FP32 baseline (Diehl & Cook, pair STDP), {config.seeds} seed(s)",
                                config, fp32_sweep(config, baseline_network(config), "diehl_cook"), out,
                                background=True)
    reference = portable(reference)
    stages = [baseline, fp32]
    stages.append(Stage("ranges", "range analysis of the FP32 tinySNN run", {"reference": str(reference)},
                        lambda folder, done: _ranges(reference), ("fp32",)))
    quantized = []
    if config.ptq.bits:
        sweep = ptq_sweep(config, reference)
        # PTQ and ITQ are independent: PTQ runs beside the ITQ grid where there is one
        stages.append(_train_stage("ptq", f"PTQ of the FP32 tinySNN, {sweep.jobs} configuration(s)", config, sweep,
                                   out, ("fp32", "ranges"), background=bool(config.itq.bits)))
        quantized.append("ptq")
    if config.itq.bits:
        sweep = itq_sweep(config, reference)
        stages.append(_train_stage("itq", f"ITQ, {len(sweep.runs)} variant(s) in {sweep.jobs} grid simulation(s)",
                                   config, sweep, out, ("fp32", "ranges")))
        quantized.append("itq")
    constraints = {"mu": config.mu, "max_memory_kb": config.constraints.max_memory_kb,
                   "max_energy_uj": config.constraints.max_energy_uj, "min_accuracy": config.constraints.min_accuracy}
    stages += [
        Stage("select", f"selection by Eq. 3 (μ = {config.mu:g}) on validation accuracy", constraints,
              lambda folder, done: select(config, done, out), ("fp32", "baseline", *quantized)),
        Stage("report", "runs.csv, summary.md and figures", {"figures": config.figures},
              lambda folder, done: report(config, done, out, folder), ("select",)),
        Stage("deploy", "the chosen model's C runtime", {"images": config.deploy_images, "compiler": has_compiler()},
              lambda folder, done: deploy(config, done, out, folder), ("select",)),
    ]
    return stages
