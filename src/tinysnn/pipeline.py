"""One run of the framework: train (or, for PTQ, load and quantize) → label → test → cost → write.

``run`` trains one configuration; ``run_grid`` trains an ITQ grid's variants side by side as the
replicas of one simulation and writes each variant like a run of its own. Each run folder gets
``metrics.json`` (tinysnn.record), ``checkpoint.pt``, ``receptive_fields.png`` and, for quantized
runs, ``export.pt``. The training state is saved to ``training.pt`` (tinysnn.trained) every
``run.checkpoint_minutes`` and once training ends, so that a killed run resumes at its last saved
image or at its evaluation.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from .checkpoint import save_checkpoint
from .config import ConfigError, Encoding, QuantConfig, Scheme, SimConfig, TrainConfig, to_plain
from .cost.energy import EnergyInputs, energy_per_image
from .cost.measured import EnergyMeter, Phase
from .cost.memory import BitWidths, memory_report
from .data import Dataset, load_dataset
from .data.datasets import default_data_root
from .device_encoding import DeviceEncoder
from .evaluation import Assignment, Scores, assign_labels, predict_all_activity, predict_proportion
from .learning import EtaSchedule, build_rule
from .network import NetworkConstants, NetworkParams, init_params
from .ops import OpCounts, ReplicaOps
from .plotting import save_receptive_fields
from .quant import FixedPointQuantizer, FP32Quantizer, Quantizer, QuantSpec
from .quant.export import export_model
from .quant.observe import MembraneTracker, measure_ranges
from .quant.reference import Reference, load_reference
from .record import ReplicaResult, build_metrics
from .results import write_json
from .runtime import (
    EVAL_SEED_OFFSET,
    ROUNDING_SEED_OFFSET,
    VAL_SEED_OFFSET,
    make_generator,
    replica_generators,
    resolve_device,
)
from .sim import (
    InferenceSimulator,
    TrainingLog,
    TrainingProgress,
    collect_counts,
    make_training_simulator,
    start_training,
    train_epochs,
)
from .trained import FILE_NAME as TRAINED_FILE
from .trained import TrainedState, config_key, load_trained, save_trained


@dataclass
class Splits:
    train: Dataset
    label: Dataset
    #: the last run.n_val training images (None for n_val = 0): never trained on or used for labels
    val: Dataset | None
    test: Dataset


def _first(split: Dataset, n: int | None, key: str) -> Dataset:
    """The first ``n`` examples of a split (all for None); too many is a config error."""
    if n is not None and n > len(split):
        raise ConfigError(f"invalid config `{key}`: asks for {n} images but the {split.split} split has {len(split)}"
                          + (" outside the validation split (run.n_val)" if split.split == "train" else ""))
    return split if n is None else split.subset(n)


def load_splits(config: TrainConfig) -> Splits:
    """Training and label images come from the training set less its last ``run.n_val`` images,
    which are the validation split."""
    root = Path(config.dataset.root) if config.dataset.root else default_data_root()
    train_split = load_dataset(config.dataset.name.value, "train", root)
    test_split = load_dataset(config.dataset.name.value, "test", root)
    n_val = config.run.n_val
    if n_val >= len(train_split):
        raise ConfigError(f"invalid config `run.n_val`: {n_val} validation images leave none of the "
                          f"{len(train_split)} training images to train on; use fewer")
    pool = train_split.subset(len(train_split) - n_val)
    return Splits(train=_first(pool, config.run.n_train, "run.n_train"),
                  label=_first(pool, config.run.n_label, "run.n_label"),
                  val=train_split.tail(n_val, "validation") if n_val else None,
                  test=_first(test_split, config.run.n_test, "run.n_test"))


def _flat_images(dataset: Dataset, device: torch.device) -> torch.Tensor:
    return dataset.images.reshape(len(dataset), -1).to(device)


def _initial_params(config: TrainConfig, reference: Reference | None, generators: list[torch.Generator],
                    quant: Quantizer, device: torch.device) -> NetworkParams:
    """PTQ: the reference's trained parameters; otherwise a fresh network. Stored by the quantizer."""
    if config.quant.scheme is Scheme.ptq:
        assert reference is not None and reference.checkpoint is not None
        checkpoint = reference.checkpoint
        weights, theta = checkpoint["weights"].to(device), checkpoint["theta"].to(device)
        if weights.shape[0] < config.run.replicas:
            raise ConfigError(f"invalid config `run.replicas`: the reference holds {weights.shape[0]} replicas")
        params = NetworkParams(weights=weights[:config.run.replicas].clone(),
                               theta=theta[:config.run.replicas].clone())
    else:
        params = init_params(config.model, generators, device)
    quant.store_weights_(params.weights)
    quant.store_theta_(params.theta)
    return params


def _train(config: TrainConfig, params: NetworkParams, network: NetworkConstants, quant: Quantizer,
           generators: list[torch.Generator], train_set: Dataset, device: torch.device, meter: EnergyMeter,
           saved: TrainedState | None, save: Callable[[TrainedState], None]) -> tuple[TrainingLog, ReplicaOps]:
    """Train all replicas of ``params`` in place, one thread (batch-1 training is dispatch-bound),
    from the training ``saved`` mid-way (None: from the start); ``save`` gets the state every
    ``run.checkpoint_minutes``."""
    torch.set_num_threads(config.threads)
    rule = build_rule(config.learning, config.model, config.sim)
    simulator = make_training_simulator(params, network, rule, config.sim, generators, quant)
    total = len(train_set) * config.run.epochs
    monitor_every = min(config.run.monitor_every, total)
    progress = start_training(simulator, monitor_every, device)
    if saved is not None:
        simulator.restore(saved.params, saved.ops, saved.log.k_counts, saved.generator_states,
                          saved.rounding_states)
        assert saved.monitor is not None
        progress.restore(saved.log, saved.monitor)
        if saved.train_phase is not None:
            meter.phases["train"] = saved.train_phase
    bar = tqdm(total=total, initial=progress.log.images, desc="train", unit="img", disable=not config.run.progress,
               mininterval=1.0, file=sys.stdout, dynamic_ncols=True)
    interval = 60.0 * config.run.checkpoint_minutes
    last_save = time.monotonic()

    def on_image(progress: TrainingProgress, phase: Phase) -> None:
        nonlocal last_save
        log = progress.log
        bar.update(1)
        if log.images % 100 == 0:
            postfix = {"spikes/img": f"{log.spikes_per_image():.1f}"}
            if log.running_accuracy:
                accuracy = log.running_accuracy[-1][1]
                postfix["acc"] = f"{sum(accuracy) / len(accuracy):.3f}"
            bar.set_postfix(postfix, refresh=False)
        if log.images < total and time.monotonic() - last_save >= interval:
            phase.split()  # the meter's train phase so far
            log.k_counts = simulator.k_counts_so_far()
            save(TrainedState(params, log, simulator.ops, [g.get_state() for g in generators],
                              meter.phases["train"], [g.get_state() for g in quant.generators],
                              progress.monitor.state()))
            last_save = time.monotonic()

    with meter.phase("train") as phase:
        log = train_epochs(simulator, _flat_images(train_set, device), train_set.labels.to(device),
                           config.run.epochs, EtaSchedule.build(config.learning), monitor_every,
                           lambda progress: on_image(progress, phase), progress)
    bar.close()
    return log, simulator.ops


def _bar(config: TrainConfig, phase: str, replica: int, images: int) -> tqdm:
    """A progress bar (images/s, ETA) for one evaluation pass of one replica."""
    desc = phase if config.run.replicas == 1 else f"{phase} r{replica}"
    return tqdm(total=images, desc=desc, unit="img", disable=not config.run.progress, mininterval=1.0,
                file=sys.stdout, dynamic_ncols=True)


def _encoder(sim: SimConfig, base_seed: int) -> DeviceEncoder | None:
    """The device encoder with image seeds base_seed + n (``sim.encoding=device``), else None (Poisson)."""
    return DeviceEncoder.build(sim, base_seed) if sim.encoding is Encoding.device else None


@dataclass
class Evaluation:
    """Labels and test results of every replica of one variant."""

    replicas: list[ReplicaResult]
    assignments: list[Assignment]
    label_ops: OpCounts
    test_ops: OpCounts
    test_presentations: int
    tracker: MembraneTracker | None
    #: the integrator of each pass (label, test, val), ``sim.integrator=auto`` resolved
    integrators: dict[str, str]


def _evaluate(config: TrainConfig, params: NetworkParams, network: NetworkConstants, spec: QuantSpec | None,
              splits: Splits, device: torch.device, meter: EnergyMeter) -> Evaluation:
    """Assign labels from the label split, then test, each replica with frozen weights."""
    sim, quant = config.sim, config.quant
    n_test = len(splits.test)
    # Evaluation is batched over images, where large elementwise ops do gain from every core.
    torch.set_num_threads(config.eval_threads or os.cpu_count() or 1)
    label_images, label_targets = _flat_images(splits.label, device), splits.label.labels.to(device)
    test_images, test_targets = _flat_images(splits.test, device), splits.test.labels
    tracker = MembraneTracker() if quant.scheme is Scheme.none else None  # ranges describe FP32 runs
    result = Evaluation([], [], OpCounts(), OpCounts(), 0, tracker, {})
    for r in range(params.replicas):
        # replica r (seed + r) labels and tests with its separate run's generators; a grid's variants
        # hold seeds seed … seed + S − 1 each, as their separate runs do
        generator = make_generator(config.seed + r + EVAL_SEED_OFFSET, device)
        rounding = make_generator(config.seed + r + EVAL_SEED_OFFSET + ROUNDING_SEED_OFFSET, device)
        quantizer = FixedPointQuantizer([spec], [rounding]) if spec is not None else FP32Quantizer()
        encoder = _encoder(sim, config.seed + r + EVAL_SEED_OFFSET)
        labelling = InferenceSimulator(params.weights[r], params.theta[r], network, sim, quantizer,
                                       observe=tracker.update if tracker is not None else None, encoder=encoder)
        with meter.phase("label"), _bar(config, "label", r, len(label_images)) as bar:
            label_counts, _ = collect_counts(labelling, label_images, sim, config.run.eval_batch, generator,
                                             bar.update)
        assignment = assign_labels(label_counts, label_targets)
        result.integrators["label"] = labelling.integrator.value
        testing = InferenceSimulator(params.weights[r], params.theta[r], network, sim, quantizer, encoder=encoder)
        with meter.phase("test"), _bar(config, "test", r, n_test) as bar:
            test_counts, presentations = collect_counts(testing, test_images, sim, config.run.eval_batch, generator,
                                                        bar.update)
        result.test_presentations += presentations
        result.integrators["test"] = testing.integrator.value
        result.label_ops += labelling.ops
        result.test_ops += testing.ops
        val = None
        if splits.val is not None:
            # own generators: validation numbers do not depend on how much is tested
            val_quantizer = (FixedPointQuantizer([spec], [make_generator(config.seed + r + VAL_SEED_OFFSET
                                                                          + ROUNDING_SEED_OFFSET, device)])
                             if spec is not None else FP32Quantizer())
            validating = InferenceSimulator(params.weights[r], params.theta[r], network, sim, val_quantizer,
                                            encoder=_encoder(sim, config.seed + r + VAL_SEED_OFFSET))
            with meter.phase("val"), _bar(config, "val", r, len(splits.val)) as bar:
                val_counts, _ = collect_counts(validating, _flat_images(splits.val, device), sim,
                                               config.run.eval_batch,
                                               make_generator(config.seed + r + VAL_SEED_OFFSET, device), bar.update)
            result.integrators["val"] = validating.integrator.value
            val = {"all_activity": Scores.of(predict_all_activity(val_counts, assignment), splits.val.labels).accuracy,
                   "proportion": Scores.of(predict_proportion(val_counts, assignment), splits.val.labels).accuracy}
        result.replicas.append(ReplicaResult(
            seed=config.seed + r,
            all_activity=Scores.of(predict_all_activity(test_counts, assignment), test_targets),
            proportion=Scores.of(predict_proportion(test_counts, assignment), test_targets),
            test_spikes_per_image=float(test_counts.sum()) / n_test,
            unassigned_neurons=int((assignment.labels < 0).sum()),
            val_accuracy=val))
        result.assignments.append(assignment)
    torch.set_num_threads(config.threads)
    return result


def _cost(config: TrainConfig, spec: QuantSpec | None, train_ops: OpCounts | None, train_images: int,
          test_ops: OpCounts, test_images: int) -> dict[str, Any]:
    """Memory (Eq. 4) and operation-count energy per image (all its presentations), at this run's precision."""
    model, sim = config.model, config.sim
    bits = spec.widths() if spec is not None else BitWidths()

    def energy(ops: OpCounts | None, images: int, training: bool, device: str) -> dict[str, float] | None:
        if ops is None:
            return None
        # neuron arithmetic at the membrane's width
        return energy_per_image(EnergyInputs(ops.to_dict(), images, sim.steps, model.n_inputs, model.n_neurons,
                                             model.topology.value, bits.weights, bits.v_mem, training, device))

    return {"memory": memory_report(model, bits).to_dict(),
            "energy_per": "image",  # all of an image's presentations (records without it: one presentation)
            # operation-count model (tinysnn.cost.energy), pJ per image; training at this run's precision;
            # an event-driven device, and a time-stepped one priced from the same counts
            "energy_pj_per_image": {"train": energy(train_ops, train_images, True, "event"),
                                    "inference": energy(test_ops, test_images, False, "event")},
            "energy_pj_per_image_timestepped": {"train": energy(train_ops, train_images, True, "timestepped"),
                                                "inference": energy(test_ops, test_images, False, "timestepped")}}


def _record(config: TrainConfig, out_dir: Path, params: NetworkParams, network: NetworkConstants,
            spec: QuantSpec | None, reference: Reference | None, log: TrainingLog, train_ops: OpCounts | None,
            splits: Splits, device: torch.device, generators: list[torch.Generator], meter: EnergyMeter,
            grid: dict[str, Any] | None, choices: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Evaluate every replica of one variant, then write its run folder; returns its metrics."""
    model, sim, quant = config.model, config.sim, config.quant
    replicas = params.replicas
    evaluation = _evaluate(config, params, network, spec, splits, device, meter)
    n_label, n_test = len(splits.label), len(splits.test)
    simulated_replicas = grid["replicas"] if grid else replicas
    label_seconds, test_seconds = meter.phases["label"]["seconds"], meter.phases["test"]["seconds"]
    metrics = build_metrics(
        config, evaluation.replicas,
        train={"images": log.images, "presentations": log.presentations, "spikes_per_image": log.spikes_per_image(),
               "seconds": log.seconds, "integrator": log.integrator,
               "ms_per_image_per_replica": 1000.0 * log.seconds / max(1, log.images) / simulated_replicas,
               "running_accuracy": log.running_accuracy,
               # the adaptive rule's k = ceil(maxN / N_th): updates per value, per replica
               "k_distribution": log.k_distribution()},
        label={"images": n_label, "seconds": label_seconds, "integrator": evaluation.integrators["label"]},
        val={"images": len(splits.val) if splits.val is not None else 0,
             "seconds": meter.phases["val"]["seconds"] if "val" in meter.phases else 0.0,
             "integrator": evaluation.integrators.get("val")},
        test={"images": n_test, "presentations": evaluation.test_presentations, "seconds": test_seconds,
              "ms_per_image": 1000.0 * test_seconds / (n_test * replicas),
              "integrator": evaluation.integrators["test"]},
        quant={"active": spec is not None, "scheme": quant.scheme.value, "bits": quant.bits,
               "target": quant.target.value, "rounding": quant.rounding.value,
               "reference": str(reference.folder) if reference else None,
               "reference_accuracy": reference.metrics["accuracy"] if reference else None,
               **(spec.summary() if spec else {})},
        ops={"steps_per_presentation": sim.steps, "n_inputs": model.n_inputs, "n_neurons": model.n_neurons,
             "train": train_ops.to_dict() if train_ops else None, "label": evaluation.label_ops.to_dict(),
             "test": evaluation.test_ops.to_dict()},
        grid=grid, choices=choices, overrides=overrides, device=device)
    metrics.update(_cost(config, spec, train_ops, log.images * replicas, evaluation.test_ops, n_test * replicas))
    # measured energy of the device (NVML) or CPU packages (RAPL), null where unreadable
    metrics["measured_energy"] = meter.report({"train": log.images * simulated_replicas,
                                                "label": n_label * replicas, "test": n_test * replicas})
    if evaluation.tracker is not None:
        metrics["ranges"] = measure_ranges(params.weights, params.theta, network.exc.thresh,
                                           evaluation.tracker).to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    assignments = torch.stack([a.labels for a in evaluation.assignments])
    if spec is not None and quant.export:
        export_model(out_dir / "export.pt", params, spec, network, sim.steps, assignments)
    save_checkpoint(out_dir / "checkpoint.pt", weights=params.weights, theta=params.theta, assignments=assignments,
                    proportions=torch.stack([a.proportions for a in evaluation.assignments]),
                    config=metrics["config"], rng_states=[g.get_state() for g in generators])
    save_receptive_fields(out_dir / "receptive_fields.png", params.weights[0],
                          f"{model.topology.value} on {config.dataset.name.value}, seed {config.seed}")
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def run_variants(config: TrainConfig, variants: list[QuantConfig], folders: list[Path],
                 choices: dict[str, Any] | None = None, overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """Train (or, for PTQ, load and quantize) the quantization ``variants`` side by side as one
    simulation, then assign labels, test and write each variant's run into its folder.

    Variant v's seeds s = 0 … run.replicas − 1 are replicas v·S + s, each with the generators of
    seed + s, so each replica equals the separate run of its variant.
    """
    device = resolve_device(config.device.value)
    reference = load_reference(config.quant.reference, config) if config.quant.reference is not None else None
    splits = load_splits(config)
    seeds = config.run.replicas
    specs = [QuantSpec.build(q, reference.ranges) if q.active and reference is not None else None for q in variants]
    quant: Quantizer = FP32Quantizer()
    if specs[0] is not None:
        quant = FixedPointQuantizer(
            [spec for spec in specs for _ in range(seeds)],  # type: ignore[misc]
            [g for _ in specs for g in replica_generators(config.seed + ROUNDING_SEED_OFFSET, seeds, device)])
    generators = [g for _ in variants for g in replica_generators(config.seed, seeds, device)]
    network = NetworkConstants.build(config.model, config.sim)
    params = _initial_params(config, reference, generators, quant, device)
    meter = EnergyMeter(device)
    log, train_ops = TrainingLog(spikes=torch.zeros(params.replicas)), None  # PTQ: no training
    state_path, key = Path(os.path.commonpath(folders)) / TRAINED_FILE, config_key(to_plain(config))
    if config.quant.scheme is not Scheme.ptq:
        saved = load_trained(state_path, key, device, grid=config.quant.is_grid)
        if saved is not None and saved.complete:
            print(f"resumed at evaluation: training restored from {state_path}")
            params, log, train_ops = saved.params, saved.log, saved.ops
            for generator, state in zip(generators, saved.generator_states):
                generator.set_state(state)
            if saved.train_phase is not None:
                meter.phases["train"] = saved.train_phase
        else:
            if saved is not None:
                print(f"resumed training after {saved.log.images} images: restored from {state_path}")
            log, train_ops = _train(config, params, network, quant, generators, splits.train, device, meter, saved,
                                    lambda state: save_trained(state_path, key, state))
            save_trained(state_path, key, TrainedState(params, log, train_ops, [g.get_state() for g in generators],
                                                       meter.phases.get("train"),
                                                       [g.get_state() for g in quant.generators], None))
    names = [folder.name for folder in folders]
    results = []
    for v, (variant, spec, folder) in enumerate(zip(variants, specs, folders)):
        mine = slice(v * seeds, (v + 1) * seeds)
        grid = ({"replicas": params.replicas, "variants": names, "variant": folder.name}
                if config.quant.is_grid else None)
        results.append(_record(
            dataclasses.replace(config, quant=variant), folder, params.of(mine), network, spec, reference,
            log.of_replicas(range(params.replicas)[mine]),
            train_ops.of(range(params.replicas)[mine]) if train_ops is not None else None,  # its own replicas'
            splits, device, generators[mine], meter.fork(),
            grid, dict(choices or {}), list(overrides or [])))
    state_path.unlink(missing_ok=True)  # every run is written: checkpoint.pt holds the trained weights
    return results


def grid_folder(quant: QuantConfig) -> str:
    """The run folder of one grid variant, e.g. ``q8_stochastic``."""
    return f"q{quant.bits}_{quant.rounding.value}"


def run_folders(config: TrainConfig, out_dir: Path) -> list[Path]:
    """Where a job writes its runs: ``out_dir``, or one folder per variant of a grid."""
    if not config.quant.is_grid:
        return [out_dir]
    return [out_dir / grid_folder(quant) for quant in config.quant.variants()]


def run(config: TrainConfig, out_dir: Path, choices: dict[str, Any] | None = None,
        overrides: list[str] | None = None) -> dict[str, Any]:
    """Train (or, for PTQ, load and quantize), assign labels, test; write the run into ``out_dir``."""
    if config.quant.is_grid:
        raise ConfigError("invalid config `quant.grid_bits`: a grid writes one run per variant; use run_grid")
    return run_variants(config, [config.quant], [out_dir], choices, overrides)[0]


def run_grid(config: TrainConfig, out_dir: Path, choices: dict[str, Any] | None = None,
             overrides: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Train an ITQ grid (``quant.grid_bits`` × ``quant.grid_roundings``) as one simulation; each
    variant is written like a run of its own into ``out_dir/<q{bits}_{rounding}>/``. Returns their
    metrics by folder name."""
    folders = run_folders(config, out_dir)
    metrics = run_variants(config, config.quant.variants(), folders, choices, overrides)
    return {folder.name: m for folder, m in zip(folders, metrics)}
