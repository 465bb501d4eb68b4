"""``python -m tinysnn.train``: train, label, test, and write metrics, checkpoint and figures.

Composed by Hydra from ``conf/`` (groups dataset, model, learning, run, and scheme, precision,
rounding, target for quantization); every value can be
overridden on the command line, e.g. ``python -m tinysnn.train run=default model.n_neurons=100``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from tqdm import tqdm

from .checkpoint import save_checkpoint
from .config import ConfigError, QuantConfig, Scheme, TrainConfig, register_configs, to_plain, validate
from .cost.energy import EnergyInputs, energy_per_image
from .cost.measured import EnergyMeter
from .cost.memory import FP32_BITS, memory_report
from .data import DataFileError, Dataset, load_dataset
from .data.datasets import default_data_root
from .evaluation import Scores, assign_labels, predict_all_activity, predict_proportion
from .learning import build_rule
from .network import NetworkConstants, NetworkParams, init_params
from .ops import OpCounts
from .plotting import save_receptive_fields
from .quant.export import export_model
from .quant.plan import ROUNDING_SEED_OFFSET, QuantPlan
from .quant.replicas import ReplicaPlans
from .quant.ranges import MembraneTracker, measure_ranges
from .quant.reference import Reference, load_reference
from .protocol import TrainingLog, collect_counts, train_epochs
from .results import read_json, write_json
from .runtime import EVAL_SEED_OFFSET, make_generator, replica_generators, resolve_device
from .simulator import InferenceSimulator, make_training_simulator

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _first(split: Dataset, n: int | None, key: str) -> Dataset:
    """The first ``n`` examples of a split (all for None); too many is a config error."""
    if n is not None and n > len(split):
        raise ConfigError(f"invalid config `{key}`: asks for {n} images but the {split.split} split has {len(split)}")
    return split if n is None else split.subset(n)


def _flat_images(dataset: Dataset, device: torch.device) -> torch.Tensor:
    return dataset.images.reshape(len(dataset), -1).to(device)


def _quant_plan(quant: QuantConfig, reference: Reference | None, seed: int, replicas: int,
                device: torch.device) -> QuantPlan | None:
    if not quant.active:
        return None
    assert reference is not None
    generators = replica_generators(seed + ROUNDING_SEED_OFFSET, replicas, device)
    return QuantPlan.build(quant, reference.ranges, generators)


def _initial_params(config: TrainConfig, reference: Reference | None, generators: list[torch.Generator],
                    plans: ReplicaPlans | None, device: torch.device) -> NetworkParams:
    """PTQ: the reference's trained parameters; otherwise a fresh network. Quantized by the plan."""
    if config.quant.scheme is Scheme.ptq:
        assert reference is not None
        checkpoint = reference.checkpoint()
        weights, theta = checkpoint["weights"].to(device), checkpoint["theta"].to(device)
        if weights.shape[0] < config.run.replicas:
            raise ConfigError(f"invalid config `run.replicas`: the reference holds {weights.shape[0]} replicas")
        params = NetworkParams(weights=weights[:config.run.replicas].clone(),
                               theta=theta[:config.run.replicas].clone())
    else:
        params = init_params(config.model, generators, device)
    if plans is not None:
        plans.replica_weights_(params.weights)
        if plans.quantizes_neurons:
            plans.replica_neurons_(params.theta)
    return params


@dataclass
class _Splits:
    train: Dataset
    label: Dataset
    test: Dataset


def _load_splits(config: TrainConfig) -> _Splits:
    root = Path(config.dataset.root) if config.dataset.root else default_data_root()
    train_split = load_dataset(config.dataset.name.value, "train", root)
    test_split = load_dataset(config.dataset.name.value, "test", root)
    return _Splits(train=_first(train_split, config.run.n_train, "run.n_train"),
                   label=_first(train_split, config.run.n_label, "run.n_label"),
                   test=_first(test_split, config.run.n_test, "run.n_test"))


def _train(config: TrainConfig, params: NetworkParams, constants: NetworkConstants, plans: ReplicaPlans | None,
           generators: list[torch.Generator], train_set: Dataset, device: torch.device,
           meter: EnergyMeter) -> tuple[TrainingLog, OpCounts]:
    """Train all replicas of ``params`` in place, one thread (batch-1 training is dispatch-bound)."""
    torch.set_num_threads(config.threads)
    model, sim = config.model, config.sim
    rule = build_rule(config.learning, model, sim)
    simulator = make_training_simulator(params, constants, rule, model, sim, generators, plans)
    total = len(train_set) * config.run.epochs
    bar = tqdm(total=total, desc="train", unit="img", disable=not config.run.progress, mininterval=1.0,
               file=sys.stdout, dynamic_ncols=True)

    def on_image(progress: TrainingLog) -> None:
        bar.update(1)
        if progress.images % 100 == 0:
            postfix = {"spikes/img": f"{progress.spikes_per_image():.1f}"}
            if progress.running_accuracy:
                accuracy = progress.running_accuracy[-1][1]
                postfix["acc"] = f"{sum(accuracy) / len(accuracy):.3f}"
            bar.set_postfix(postfix, refresh=False)

    with meter.phase("train"):
        log = train_epochs(simulator, params, _flat_images(train_set, device), train_set.labels.to(device),
                           config.run.epochs, constants, model, sim, min(config.run.monitor_every, total), on_image)
    bar.close()
    return log, simulator.ops


def _evaluate_and_record(config: TrainConfig, out_dir: Path, params: NetworkParams, constants: NetworkConstants,
                         plan: QuantPlan | None, reference: Reference | None, log: TrainingLog,
                         train_ops: OpCounts | None, splits: _Splits, device: torch.device,
                         choices: dict[str, Any] | None, overrides: list[str] | None,
                         generators: list[torch.Generator], meter: EnergyMeter,
                         grid: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assign labels and test every replica of ``params``; write metrics.json, checkpoint.pt,
    receptive_fields.png and, for quantized runs, export.pt into ``out_dir``."""
    model, sim, replicas, quant = config.model, config.sim, params.replicas, config.quant
    n_label, n_test = len(splits.label), len(splits.test)
    # Evaluation is batched over images, where large elementwise ops do gain from every core.
    torch.set_num_threads(config.eval_threads or os.cpu_count() or 1)
    label_images = _flat_images(splits.label, device)
    label_targets = splits.label.labels.to(device)
    test_images = _flat_images(splits.test, device)
    test_targets = splits.test.labels
    tracker = MembraneTracker() if quant.scheme is Scheme.none else None  # ranges describe FP32 runs
    per_replica = []
    test_presentations = 0
    assignments, proportions = [], []
    label_ops, test_ops = OpCounts(), OpCounts()
    for r in range(replicas):
        generator = make_generator(config.seed + EVAL_SEED_OFFSET, device)
        rounding = make_generator(config.seed + EVAL_SEED_OFFSET + ROUNDING_SEED_OFFSET, device)
        labelling = InferenceSimulator(params.weights[r], params.theta[r], constants, model, sim, quant=plan,
                                       rounding_generator=rounding, tracker=tracker)
        with meter.phase("label"):
            label_counts, _ = collect_counts(labelling, label_images, sim, config.run.eval_batch, generator)
        assignment = assign_labels(label_counts, label_targets)
        testing = InferenceSimulator(params.weights[r], params.theta[r], constants, model, sim, quant=plan,
                                     rounding_generator=rounding)
        with meter.phase("test"):
            test_counts, presentations = collect_counts(testing, test_images, sim, config.run.eval_batch, generator)
        test_presentations += presentations
        label_ops += labelling.ops
        test_ops += testing.ops
        all_activity = Scores.of(predict_all_activity(test_counts, assignment), test_targets)
        proportion = Scores.of(predict_proportion(test_counts, assignment), test_targets)
        per_replica.append({"all_activity": all_activity, "proportion": proportion,
                            "test_spikes_per_image": float(test_counts.sum()) / n_test,
                            "unassigned_neurons": int((assignment.labels < 0).sum())})
        assignments.append(assignment.labels)
        proportions.append(assignment.proportions)
    torch.set_num_threads(config.threads)

    def mean(key: str) -> float:
        return sum(r[key].accuracy for r in per_replica) / replicas

    simulated_replicas = grid["replicas"] if grid else replicas
    label_seconds, test_seconds = meter.phases["label"]["seconds"], meter.phases["test"]["seconds"]
    metrics: dict[str, Any] = {
        "dataset": config.dataset.name.value,
        "topology": model.topology.value,
        "rule": config.learning.rule.value,
        "n_neurons": model.n_neurons,
        "replicas": replicas,
        "accuracy": {"all_activity": mean("all_activity"), "proportion": mean("proportion")},
        "per_replica": [{
            "seed": config.seed + r,
            "accuracy": {"all_activity": p["all_activity"].accuracy, "proportion": p["proportion"].accuracy},
            "per_class_accuracy": {"all_activity": p["all_activity"].per_class,
                                   "proportion": p["proportion"].per_class},
            "confusion": {"all_activity": p["all_activity"].confusion, "proportion": p["proportion"].confusion},
            "test_spikes_per_image": p["test_spikes_per_image"],
            "unassigned_neurons": p["unassigned_neurons"],
        } for r, p in enumerate(per_replica)],
        "train": {
            "images": log.images,
            "presentations": log.presentations,
            "spikes_per_image": log.spikes_per_image(),
            "seconds": log.seconds,
            "ms_per_image_per_replica": 1000.0 * log.seconds / max(1, log.images) / simulated_replicas,
            "running_accuracy": log.running_accuracy,
        },
        "label": {"images": n_label, "seconds": label_seconds},
        "test": {"images": n_test, "presentations": test_presentations, "seconds": test_seconds,
                 "ms_per_image": 1000.0 * test_seconds / (n_test * replicas)},
        "quant": {"active": plan is not None, "scheme": quant.scheme.value, "bits": quant.bits,
                  "target": quant.target.value, "rounding": quant.rounding.value,
                  "reference": str(reference.folder) if reference else None,
                  "reference_accuracy": reference.metrics["accuracy"] if reference else None,
                  **(plan.summary() if plan else {})},
        # what the simulations did (all replicas), for the energy model; a grid's training ops
        # are those of its whole simulation (every variant), so its training energy is their mean
        "ops": {"steps_per_presentation": sim.steps, "n_inputs": model.n_inputs, "n_neurons": model.n_neurons,
                "train": train_ops.to_dict() if train_ops else None, "label": label_ops.to_dict(),
                "test": test_ops.to_dict()},
        "grid": grid,
        "choices": dict(choices or {}),
        "overrides": list(overrides or []),
        "config": to_plain(config),
        "environment": {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "machine": platform.machine()},
    }
    weight_bits = plan.weight_format.total_bits if plan is not None else FP32_BITS
    neuron_bits = plan.neuron_format.total_bits if plan is not None and plan.neuron_format else FP32_BITS
    metrics["memory"] = memory_report(model, weight_bits, neuron_bits).to_dict()

    def energy(ops: OpCounts | None, training: bool) -> dict[str, float] | None:
        if ops is None:
            return None
        return energy_per_image(EnergyInputs(ops.to_dict(), sim.steps, model.n_inputs, model.n_neurons,
                                             model.topology.value, weight_bits, neuron_bits, training))

    # operation-count model (tinysnn.cost.energy), pJ per image; training at this run's precision
    metrics["energy_pj_per_image"] = {"train": energy(train_ops, True), "inference": energy(test_ops, False)}
    # measured energy of the device (NVML) or CPU packages (RAPL), null where unreadable
    metrics["measured_energy"] = meter.report({"train": log.images * simulated_replicas,
                                                "label": n_label * replicas, "test": n_test * replicas})
    if tracker is not None:
        metrics["ranges"] = measure_ranges(params.weights, params.theta, constants.exc.thresh, tracker).to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    stacked_assignments = torch.stack(assignments)
    if plan is not None and quant.export:
        export_model(out_dir / "export.pt", params, plan, constants, model, sim, stacked_assignments)
    save_checkpoint(out_dir / "checkpoint.pt", weights=params.weights, theta=params.theta,
                    assignments=stacked_assignments, proportions=torch.stack(proportions),
                    config=metrics["config"], rng_states=[g.get_state() for g in generators])
    save_receptive_fields(out_dir / "receptive_fields.png", params.weights[0],
                          f"{model.topology.value} on {config.dataset.name.value}, seed {config.seed}")
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _run_variants(config: TrainConfig, variants: list[QuantConfig], folders: list[Path],
                  choices: dict[str, Any] | None, overrides: list[str] | None) -> list[dict[str, Any]]:
    """Train (or, for PTQ, load and quantize) the quantization ``variants`` side by side as one
    simulation, then assign labels, test and write each variant's run into its folder.

    Variant v's seeds s = 0 … run.replicas − 1 are replicas v·S + s, each with the generators of
    seed + s, so each replica equals the separate run of its variant.
    """
    device = resolve_device(config.device.value)
    splits = _load_splits(config)
    seeds = config.run.replicas
    reference = load_reference(config.quant.reference, config) if config.quant.reference is not None else None
    plans = [_quant_plan(quant, reference, config.seed, seeds, device) for quant in variants]
    training_plans = None if plans[0] is None else ReplicaPlans.side_by_side(plans)  # type: ignore[arg-type]
    generators = [g for _ in variants for g in replica_generators(config.seed, seeds, device)]
    constants = NetworkConstants.build(config.model, config.sim)
    params = _initial_params(config, reference, generators, training_plans, device)
    meter = EnergyMeter(device)
    log, train_ops = TrainingLog(spikes=torch.zeros(params.replicas)), None  # PTQ: no training
    if config.quant.scheme is not Scheme.ptq:
        log, train_ops = _train(config, params, constants, training_plans, generators, splits.train, device, meter)
    names = [folder.name for folder in folders]
    results = []
    for v, (quant, plan, folder) in enumerate(zip(variants, plans, folders)):
        mine = slice(v * seeds, (v + 1) * seeds)
        grid = ({"replicas": params.replicas, "variants": names, "variant": folder.name}
                if config.quant.is_grid else None)
        results.append(_evaluate_and_record(
            dataclasses.replace(config, quant=quant), folder, NetworkParams(params.weights[mine], params.theta[mine]),
            constants, plan, reference, log.of_replicas(range(params.replicas)[mine]), train_ops, splits, device,
            choices, overrides, generators[mine], meter.fork(), grid))
    return results


def run(config: TrainConfig, out_dir: Path, choices: dict[str, Any] | None = None,
        overrides: list[str] | None = None) -> dict[str, Any]:
    """Train (or, for PTQ, load and quantize), assign labels, test; write metrics.json, checkpoint.pt,
    receptive_fields.png and, for quantized runs, export.pt into ``out_dir``."""
    if config.quant.is_grid:
        raise ConfigError("invalid config `quant.grid_bits`: a grid writes one run per variant; use run_grid")
    return _run_variants(config, [config.quant], [out_dir], choices, overrides)[0]


def grid_folder(quant: QuantConfig) -> str:
    """The run folder of one grid variant, e.g. ``q8_stochastic``."""
    return f"q{quant.bits}_{quant.rounding.value}"


def run_grid(config: TrainConfig, out_dir: Path, choices: dict[str, Any] | None = None,
             overrides: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Train an ITQ grid (``quant.grid_bits`` × ``quant.grid_roundings``) as one simulation; each
    variant is written like a run of its own into ``out_dir/<q{bits}_{rounding}>/``. Returns their
    metrics by folder name."""
    folders = _run_folders(config, out_dir)
    metrics = _run_variants(config, config.quant.variants(), folders, choices, overrides)
    return {folder.name: m for folder, m in zip(folders, metrics)}


def summary(metrics: dict[str, Any]) -> str:
    acc, train, quant = metrics["accuracy"], metrics["train"], metrics["quant"]
    precision = (f" {quant['scheme']} {quant['bits']}-bit q{quant['target'].upper()} {quant['rounding']}"
                 if quant["active"] else "")
    training = (f"quantized {quant['reference']} without training" if train["images"] == 0 else
                f"trained {train['images']} images at {train['ms_per_image_per_replica']:.1f} ms/image")
    return (f"{metrics['dataset']} {metrics['topology']}/{metrics['rule']} N={metrics['n_neurons']}{precision}: "
            f"test accuracy {100 * acc['all_activity']:.2f}% (all-activity), {100 * acc['proportion']:.2f}% "
            f"(proportion) on {metrics['test']['images']} images; {training}")


register_configs()


def _run_folders(config: TrainConfig, out_dir: Path) -> list[Path]:
    """Where a job writes its runs: ``out_dir``, or one folder per variant of a grid."""
    if not config.quant.is_grid:
        return [out_dir]
    return [out_dir / grid_folder(quant) for quant in config.quant.variants()]


def _finished(folders: list[Path], overrides: list[str]) -> list[dict[str, Any]] | None:
    """The metrics of an earlier run of this same sweep job, if every one of its runs finished."""
    found = []
    for folder in folders:
        path = folder / "metrics.json"
        if not path.is_file():
            return None
        metrics = read_json(path)
        if metrics.get("overrides") != overrides:
            return None
        found.append(metrics)
    return found


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    out_dir, overrides = Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task)
    try:
        config = validate(cfg)
        folders = _run_folders(config, out_dir)
        # re-running a sweep into the same hydra.sweep.dir skips the jobs that already finished
        done = _finished(folders, overrides) if hydra_cfg.mode is RunMode.MULTIRUN else None
        if done is not None:
            print(f"skipped (finished earlier): {out_dir}")
            return max(metrics["accuracy"]["all_activity"] for metrics in done)
        results = _run_variants(config, config.quant.variants(), folders, dict(hydra_cfg.runtime.choices), overrides)
    except (ConfigError, DataFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    for folder, metrics in zip(folders, results):
        print(summary(metrics))
        print(f"results: {folder}")
    return max(metrics["accuracy"]["all_activity"] for metrics in results)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy's: launchers that ship the job to
    # worker processes (joblib) then pickle it by reference instead of by value.
    from tinysnn.train import main as entry_point

    entry_point()
