"""Typed configuration schemas, validated when turned into objects.

Hydra composes YAML from ``conf/`` on top of these dataclasses (type errors surface at
composition); ``validate`` turns the composed DictConfig into dataclass instances whose
``__post_init__`` checks ranges and names the offending key and a fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is impossible; the message names the key and a fix."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"invalid config `{key}`: {message}")


class DatasetName(str, Enum):
    mnist = "mnist"
    fashion_mnist = "fashion_mnist"


class Topology(str, Enum):
    """Network architecture: Diehl & Cook's inhibitory population, or tinySNN's direct lateral inhibition."""

    diehl_cook = "diehl_cook"
    tinysnn = "tinysnn"


class Rule(str, Enum):
    #: pair-wise STDP (Diehl & Cook baseline): depression at pre spikes, potentiation at post spikes
    pair_stdp = "pair_stdp"
    #: SL-STDP (Srinivasan et al. 2017, reconstructed): post-spike updates, sign from the pre trace
    sl_stdp = "sl_stdp"
    #: tinySNN: potentiation once per update window with the adaptive factor k = ceil(maxN / N_th)
    adaptive = "adaptive"


class PreTrace(str, Enum):
    """Which presynaptic trace x_pre the windowed rule uses."""

    last = "last"  # the trace at the update step
    mean = "mean"  # the trace averaged over the update window
    spike = "spike"  # each updated neuron's x_pre at its last spike in the window (causal pairing)


class Rounding(str, Enum):
    """How a value is put on a fixed-point grid of step ε (tinysnn.quant.rounding has the equations)."""

    truncate = "truncate"
    nearest = "nearest"
    stochastic = "stochastic"


class MaxN(str, Enum):
    """Over which spikes the adaptive rule's maxN (k = ceil(maxN / N_th)) is counted."""

    #: from the presentation's start to the update time: the paper's definition (§2.2)
    presentation = "presentation"
    #: inside the update window only
    window = "window"


class Scheme(str, Enum):
    """When parameters are quantized: never, after FP32 training (PTQ), or during training (ITQ)."""

    none = "none"
    ptq = "ptq"
    itq = "itq"


class QuantTarget(str, Enum):
    """What is fixed point: weights only (qW), or weights and neuron parameters V_mem, V_th/θ (qWN)."""

    w = "w"
    wn = "wn"


class VRange(str, Enum):
    """Which values of V_mem the neuron format's integer bits must cover."""

    #: up to the largest threshold and potential: deep inhibition saturates at the format's floor
    spiking = "spiking"
    #: every value observed, the most negative included
    observed = "observed"


class Encoding(str, Enum):
    """How evaluation turns images into input spikes (training always uses ``poisson``)."""

    #: Bernoulli draws per pixel and step from the run's torch generator (tinysnn.encoding)
    poisson = "poisson"
    #: the integer inter-spike-interval encoder of the C runtime (tinysnn.device_encoding): image n of a
    #: pass has seed (evaluation seed + n), so a device reproduces the simulator's input spikes
    device = "device"


class Integrator(str, Enum):
    """How tinySNN's kernels advance the membranes (training windows; ``compiled`` also inference)."""

    #: ``compiled`` where it applies and the pass is long enough to pay for its build, else ``step``
    #: (both give the same bits; tinysnn.sim.auto)
    auto = "auto"
    #: step by step: the reference
    step = "step"
    #: in closed form between spikes, u_t = α^(t−a+1)·u_(a−1) + Σ α^(t−j)·I_j as one small matmul per
    #: spike-free stretch; equal to the step path up to float32 rounding
    closed_form = "closed_form"
    #: the step path's arithmetic, branch-free, compiled by torch.compile into one kernel per window
    #: (tinysnn.sim.lif_window); bit-identical to the step path (qWN's roundings included), also
    #: used for tinySNN's inference
    compiled = "compiled"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@dataclass
class DatasetConfig:
    name: DatasetName = DatasetName.mnist
    #: folder holding MNIST/raw and FashionMNIST/raw; null = $TINYSNN_DATA or <repo>/data
    root: Optional[str] = None


@dataclass
class LIFConfig:
    """Leaky integrate-and-fire population constants (mV, ms)."""

    rest_mv: float = -65.0
    reset_mv: float = -65.0
    thresh_mv: float = -52.0
    tau_mem_ms: float = 100.0
    refrac_ms: float = 5.0

    def check(self, key: str) -> None:
        _require(self.tau_mem_ms > 0, f"{key}.tau_mem_ms", f"must be > 0, got {self.tau_mem_ms}")
        _require(self.refrac_ms >= 0, f"{key}.refrac_ms", f"must be >= 0, got {self.refrac_ms}")
        _require(self.thresh_mv > self.rest_mv, f"{key}.thresh_mv",
                 f"threshold {self.thresh_mv} mV must lie above rest {self.rest_mv} mV")
        _require(self.reset_mv < self.thresh_mv, f"{key}.reset_mv",
                 f"reset {self.reset_mv} mV must lie below threshold {self.thresh_mv} mV")


def _inhibitory_lif() -> LIFConfig:
    return LIFConfig(rest_mv=-60.0, reset_mv=-45.0, thresh_mv=-40.0, tau_mem_ms=10.0, refrac_ms=2.0)


@dataclass
class ModelConfig:
    topology: Topology = Topology.diehl_cook
    n_neurons: int = 400
    n_inputs: int = 784
    exc: LIFConfig = field(default_factory=LIFConfig)
    inh: LIFConfig = field(default_factory=_inhibitory_lif)
    theta_plus_mv: float = 0.2
    tau_theta_ms: float = 1e7
    #: E→I one-to-one weight and I→E all-but-self weight (current mode: mV jump per spike)
    w_exc_inh_mv: float = 22.5
    w_inh_exc_mv: float = 120.0
    #: tinySNN's direct lateral inhibition: mV removed from every other excitatory neuron per spike
    w_lateral_mv: float = 120.0
    #: steps from an excitatory spike to its lateral inhibition (2 = the E→I→E path's timing)
    lateral_delay_steps: int = 2
    w_min: float = 0.0
    w_max: float = 1.0
    #: X→E initial weights are w_init_scale · U[0, 1)
    w_init_scale: float = 0.3
    #: each neuron's incoming weights are rescaled to sum to this after every presentation
    weight_norm_total: float = 78.4

    def check(self) -> None:
        _require(self.n_neurons >= 1, "model.n_neurons", f"must be >= 1, got {self.n_neurons}")
        _require(self.n_inputs >= 1, "model.n_inputs", f"must be >= 1, got {self.n_inputs}")
        self.exc.check("model.exc")
        self.inh.check("model.inh")
        _require(self.theta_plus_mv >= 0, "model.theta_plus_mv", "must be >= 0")
        _require(self.tau_theta_ms > 0, "model.tau_theta_ms", "must be > 0")
        _require(self.w_exc_inh_mv >= 0, "model.w_exc_inh_mv", "is a magnitude, must be >= 0")
        _require(self.w_inh_exc_mv >= 0, "model.w_inh_exc_mv", "is a magnitude, must be >= 0")
        _require(self.w_lateral_mv >= 0, "model.w_lateral_mv", "is a magnitude, must be >= 0")
        _require(self.lateral_delay_steps >= 1, "model.lateral_delay_steps", "must be >= 1")
        _require(self.w_max > self.w_min, "model.w_max", f"must exceed w_min={self.w_min}")
        _require(self.w_init_scale > 0, "model.w_init_scale", "must be > 0")
        _require(self.weight_norm_total > 0, "model.weight_norm_total", "must be > 0")


@dataclass
class LearningConfig:
    """Plasticity of the X→E weights; fields a rule does not use are ignored by it."""

    rule: Rule = Rule.pair_stdp
    #: η_pre: depression at a presynaptic spike (pair_stdp)
    nu_pre: float = 1e-4
    #: η_post: potentiation rate (all rules)
    nu_post: float = 1e-2
    tau_pre_ms: float = 20.0
    tau_post_ms: float = 20.0
    #: sl_stdp: depression rate η_d and the trace target x_tar separating potentiation from depression
    nu_depression: float = 1e-2
    x_tar: float = 0.4
    #: adaptive: N_th in k = ceil(maxN / N_th)
    n_th: int = 5
    #: adaptive: maxN counted from the presentation's start (the paper's) or inside the window
    max_n: MaxN = MaxN.presentation
    #: adaptive: weights are updated once per window (null = once per presentation)
    update_window_ms: Optional[float] = None
    #: adaptive: x_pre at the update step (last), averaged over the window (mean), or at the neuron's spike
    pre_trace: PreTrace = PreTrace.last
    #: η_post falls geometrically from nu_post to this over the training run (null = constant)
    nu_post_final: Optional[float] = None

    def check(self) -> None:
        for key in ("nu_pre", "nu_post", "nu_depression"):
            value = getattr(self, key)
            _require(value >= 0, f"learning.{key}", f"must be >= 0, got {value}")
        _require(self.tau_pre_ms > 0, "learning.tau_pre_ms", "must be > 0")
        _require(self.tau_post_ms > 0, "learning.tau_post_ms", "must be > 0")
        _require(0 <= self.x_tar <= 1, "learning.x_tar", f"must lie in [0, 1] (traces do), got {self.x_tar}")
        _require(self.n_th >= 1, "learning.n_th", f"must be >= 1, got {self.n_th}")
        _require(self.update_window_ms is None or self.update_window_ms > 0, "learning.update_window_ms",
                 "must be > 0 or null (once per presentation)")
        _require(self.nu_post_final is None or self.nu_post_final > 0, "learning.nu_post_final",
                 f"must be > 0 (geometric decay) or null (constant η_post), got {self.nu_post_final}")


@dataclass
class SimConfig:
    """Time step, presentation protocol and rate coding."""

    dt_ms: float = 1.0
    presentation_ms: float = 350.0
    #: a white pixel (255) fires at this rate; D&C: pixel/4 Hz
    max_rate_hz: float = 63.75
    #: fewer spikes than this in a presentation → raise the rate and present again
    min_spikes: int = 5
    max_retries: int = 5
    #: added to the max rate at every retry; D&C: +pixel/8 Hz
    retry_rate_step_hz: float = 31.875
    #: tinySNN kernel: auto, step (reference), closed_form or compiled (fewer kernel launches)
    integrator: Integrator = Integrator.auto
    #: evaluation input spikes: poisson (torch generator) or device (the C runtime's integer encoder)
    encoding: Encoding = Encoding.poisson

    @property
    def steps(self) -> int:
        return int(round(self.presentation_ms / self.dt_ms))

    def check(self) -> None:
        _require(self.dt_ms > 0, "sim.dt_ms", f"must be > 0, got {self.dt_ms}")
        _require(self.presentation_ms >= self.dt_ms, "sim.presentation_ms", "must be at least one time step")
        _require(self.max_rate_hz > 0, "sim.max_rate_hz", f"must be > 0, got {self.max_rate_hz}")
        top_rate = self.max_rate_hz + self.max_retries * self.retry_rate_step_hz
        _require(top_rate * self.dt_ms / 1000.0 <= 1.0, "sim.max_rate_hz",
                 f"a rate of {top_rate} Hz at dt={self.dt_ms} ms exceeds one spike per step; lower it or dt")
        _require(self.min_spikes >= 0, "sim.min_spikes", "must be >= 0")
        _require(self.max_retries >= 0, "sim.max_retries", "must be >= 0")
        _require(self.retry_rate_step_hz >= 0, "sim.retry_rate_step_hz", "must be >= 0")


@dataclass
class RunConfig:
    """How much to train and evaluate; presets in conf/run/."""

    #: the last n_val training images: the validation split, never trained on or used for labels;
    #: every choice (settings, presets, the selected model) is made on it (0 = none)
    n_val: int = 10_000
    #: training images per epoch, from the start of the training set (null = all but the validation split)
    n_train: Optional[int] = 1000
    epochs: int = 1
    #: training images used (frozen) to assign labels to neurons (null = all but the validation split)
    n_label: Optional[int] = 1000
    #: test images (null = the whole test set)
    n_test: Optional[int] = 1000
    eval_batch: int = 1000
    #: independent networks trained side by side (seeds seed, seed+1, …)
    replicas: int = 1
    #: training images between running-accuracy updates in the progress bar
    monitor_every: int = 1000
    progress: bool = True
    #: minutes of training between saves of its state (training.pt), from which a killed run resumes
    #: (0 = after every image)
    checkpoint_minutes: float = 10.0

    def check(self) -> None:
        for key in ("n_train", "n_label", "n_test"):
            value = getattr(self, key)
            _require(value is None or value >= 1, f"run.{key}", f"must be >= 1 or null, got {value}")
        _require(self.n_val >= 0, "run.n_val", f"must be >= 0 (0 = no validation split), got {self.n_val}")
        _require(self.epochs >= 1, "run.epochs", f"must be >= 1, got {self.epochs}")
        _require(self.eval_batch >= 1, "run.eval_batch", f"must be >= 1, got {self.eval_batch}")
        _require(self.replicas >= 1, "run.replicas", f"must be >= 1, got {self.replicas}")
        _require(self.monitor_every >= 1, "run.monitor_every", "must be >= 1")
        _require(self.checkpoint_minutes >= 0, "run.checkpoint_minutes",
                 f"must be >= 0 (0 = after every image), got {self.checkpoint_minutes}")


#: the widest fixed-point format: float32 tensors hold its codes exactly (24 significant bits)
MAX_BITS = 24
#: the parameters quant.bits_by_param may give widths of
QUANT_PARAMS = ("w", "v_mem", "theta")


@dataclass
class QuantConfig:
    """Fixed-point quantization (groups scheme, precision, rounding, target write here)."""

    scheme: Scheme = Scheme.none
    #: total bits per stored value (null = FP32)
    bits: Optional[int] = None
    #: per-parameter widths overriding ``bits``: w (weights), v_mem (membrane potential and the
    #: inhibition acting on it), theta (the threshold V_th = u_th + θ); on the command line
    #: '+quant.bits_by_param={w:4,theta:8,v_mem:12}' (the + adds keys to the empty dict)
    bits_by_param: dict[str, int] = field(default_factory=dict)
    rounding: Rounding = Rounding.nearest
    target: QuantTarget = QuantTarget.w
    #: FP32 run folder: PTQ quantizes its checkpoint; both schemes take their ranges from its metrics.json
    reference: Optional[str] = None
    v_range: VRange = VRange.spiking
    #: fractional bits of the membrane decay constant α (a device constant)
    decay_frac_bits: int = 16
    #: write export.pt (integer codes and formats) for quantized runs
    export: bool = True
    #: ITQ grid in one simulation: one replica per (bits, rounding) in the product of these lists
    #: (an empty list = this node's bits or rounding), each written to its own run folder
    grid_bits: list[int] = field(default_factory=list)
    grid_roundings: list[Rounding] = field(default_factory=list)

    def width(self, param: str) -> int:
        """Bits of ``param`` (w, v_mem or theta): its own width, else ``bits``."""
        width = self.bits_by_param.get(param, self.bits)
        assert width is not None, "an active quantization has a width"
        return width

    @property
    def active(self) -> bool:
        """Whether anything is fixed point (PTQ at precision=fp32 re-evaluates the reference as is)."""
        return self.scheme is not Scheme.none and (self.bits is not None or bool(self.grid_bits)
                                                   or bool(self.bits_by_param))

    @property
    def is_grid(self) -> bool:
        return bool(self.grid_bits or self.grid_roundings)

    def variants(self) -> list["QuantConfig"]:
        """The single configurations this node holds: the grid's (bits × rounding), or itself."""
        if not self.is_grid:
            return [self]
        return [replace(self, bits=bits, rounding=rounding, grid_bits=[], grid_roundings=[])
                for bits in (self.grid_bits or [self.bits]) for rounding in (self.grid_roundings or [self.rounding])]

    def check(self) -> None:
        _require(self.bits is None or 2 <= self.bits <= MAX_BITS, "quant.bits",
                 f"must be between 2 and {MAX_BITS} (or null for FP32), got {self.bits}: weights are float32, "
                 f"whose {MAX_BITS} significant bits hold every code of a {MAX_BITS}-bit format exactly")
        _require(self.scheme is not Scheme.none or self.bits is None, "quant.bits",
                 f"{self.bits} bits but quant.scheme=none; choose scheme=ptq or scheme=itq, or precision=fp32")
        _require(self.reference is not None or not (self.active or self.scheme is Scheme.ptq), "quant.reference",
                 f"scheme={self.scheme.value} needs an FP32 run folder for its range analysis "
                 "(and, for PTQ, its checkpoint): quant.reference=outputs/.../<run>")
        _require(1 <= self.decay_frac_bits <= 30, "quant.decay_frac_bits", "must lie in [1, 30]")
        for key, value in self.bits_by_param.items():
            _require(key in QUANT_PARAMS, "quant.bits_by_param",
                     f"unknown parameter {key!r}; the parameters are {', '.join(QUANT_PARAMS)}")
            _require(2 <= value <= MAX_BITS, "quant.bits_by_param",
                     f"{key}: must be between 2 and {MAX_BITS}, got {value}")
            _require(key == "w" or self.target is QuantTarget.wn, "quant.bits_by_param",
                     f"{key} is a neuron parameter, which qW keeps in FP32; use target=wn or drop it")
        _require(not self.bits_by_param or self.scheme is not Scheme.none, "quant.bits_by_param",
                 "needs a quantization scheme (scheme=ptq or scheme=itq)")
        needed = ("w", "v_mem", "theta") if self.target is QuantTarget.wn else ("w",)
        missing = [key for key in needed if key not in self.bits_by_param]
        _require(not self.bits_by_param or self.bits is not None or self.is_grid or not missing, "quant.bits_by_param",
                 f"gives no width for {', '.join(missing)} and quant.bits is null; add them or set a precision")
        if self.is_grid:
            _require(self.scheme is Scheme.itq, "quant.grid_bits",
                     f"a grid trains its variants side by side, which only ITQ does (scheme={self.scheme.value}); "
                     "sweep PTQ with --multirun instead")
            _require(bool(self.grid_bits) or self.bits is not None, "quant.grid_bits",
                     "a rounding grid needs a precision: set quant.grid_bits=[...] or a quantized precision")
            for bits in self.grid_bits:
                _require(2 <= bits <= MAX_BITS, "quant.grid_bits",
                         f"every width must be between 2 and {MAX_BITS} (float32 weights), got {bits}")
            _require(len(set(self.grid_bits)) == len(self.grid_bits)
                     and len(set(self.grid_roundings)) == len(self.grid_roundings), "quant.grid_bits",
                     "lists a variant twice; give each width and rounding once")


@dataclass
class TrainConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    seed: int = 0
    device: Device = Device.auto
    #: torch intra-op threads for training (batch-1 steps are dispatch-bound: 1 is fastest)
    threads: int = 1
    #: threads for batched evaluation (null = every core)
    eval_threads: Optional[int] = None

    def __post_init__(self) -> None:
        self.model.check()
        self.learning.check()
        self.sim.check()
        self.run.check()
        self.quant.check()
        window = self.learning.update_window_ms
        _require(window is None or window >= self.sim.dt_ms, "learning.update_window_ms",
                 f"must be at least one time step ({self.sim.dt_ms} ms)")
        integrator = self.sim.integrator.value
        if self.sim.integrator in (Integrator.closed_form, Integrator.compiled):  # auto steps where they don't apply
            _require(self.learning.rule is Rule.adaptive and self.model.topology is Topology.tinysnn,
                     "sim.integrator", f"{integrator} integrates tinySNN's windowed kernel (model=tinysnn "
                     "learning=adaptive); use sim.integrator=step or auto for other networks")
        if self.sim.integrator is Integrator.closed_form:
            _require(not (self.quant.active and self.quant.target is QuantTarget.wn), "sim.integrator",
                     "closed_form keeps FP32 membranes, but qWN re-rounds u every step; use sim.integrator=compiled, "
                     "auto or step")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        _require(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        _require(self.eval_threads is None or self.eval_threads >= 1, "eval_threads", "must be >= 1 or null")


def validate(cfg: DictConfig) -> TrainConfig:
    """Return the composed config as a checked ``TrainConfig`` (raises ConfigError)."""
    obj: Any = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig)
    return obj


def to_plain(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain Python types (for JSON and weights_only checkpoints)."""
    container = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


#: μ values of the sweep that shows how the choice moves
DEFAULT_MUS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


@dataclass
class SelectionConfig:
    """Model selection (paper Eq. 3) and its constraints."""

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

    def __post_init__(self) -> None:
        _require(self.mu >= 0, "selection.mu", f"must be >= 0, got {self.mu}")
        _require(all(m >= 0 for m in self.mus), "selection.mus", "every μ must be >= 0")
        for key in ("max_memory_kb", "max_inference_uj", "max_training_uj"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"selection.{key}", f"must be > 0 or null, got {value}")
        _require(self.min_accuracy is None or 0 <= self.min_accuracy <= 1, "selection.min_accuracy",
                 f"a fraction in [0, 1], got {self.min_accuracy}")
        _require(self.readout in ("all_activity", "proportion"), "selection.readout",
                 f"all_activity or proportion, got {self.readout}")


def _require_folders(folders: list[str], key: str, example: str) -> None:
    _require(bool(folders), key, f"give at least one folder, e.g. {example}")


@dataclass
class SelectConfig:
    """``python -m tinysnn.selection sweeps=[multirun/paper] selection.mu=0.1``"""

    #: sweep or run folders; every metrics.json under them is a candidate
    sweeps: list[str] = field(default_factory=list)
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        _require_folders(self.sweeps, "sweeps", "sweeps=[multirun/paper]")


@dataclass
class ReportConfig:
    """``python -m tinysnn.report sweeps=[multirun/paper] out=report selection.mu=0.1``"""

    sweeps: list[str] = field(default_factory=list)
    #: folder for runs.csv, summary.md and the figures
    out: str = "report"
    #: false: CSV and markdown only
    figures: bool = True
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        _require_folders(self.sweeps, "sweeps", "sweeps=[multirun/paper]")


@dataclass
class RangesConfig:
    """``python -m tinysnn.ranges runs=[outputs/.../<run>]``"""

    #: FP32 run folders (metrics.json + checkpoint.pt)
    runs: list[str] = field(default_factory=list)
    #: recompute ranges that are already recorded
    force: bool = False

    def __post_init__(self) -> None:
        _require_folders(self.runs, "runs", "runs=[outputs/mnist/tinysnn-adaptive/<time>]")


class VerifyInput(str, Enum):
    """Which input spikes ``tinysnn.deploy`` checks the C runtime with."""

    #: the device encoder on both sides (sim.encoding=device)
    device = "device"
    #: the simulator's Poisson draws, written to a spikes file the C CLI reads (-f)
    file = "file"


@dataclass
class DeployConfig:
    """``python -m tinysnn.deploy run_dir=<quantized run> out=<folder> verify_images=N``"""

    #: a quantized (or FP32) tinySNN run folder (metrics.json, checkpoint.pt, export.pt)
    run_dir: str = ""
    #: instead of run_dir: deploy the model that selection (Eq. 3) chooses among the runs under these folders
    sweeps: list[str] = field(default_factory=list)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    #: the generated C folder (replaced as a whole)
    out: str = "deploy"
    #: which replica of the run
    replica: int = 0
    #: drop the neurons that hold no class and the zero-weight synapses (sparse rows where smaller)
    prune: bool = False
    #: also write the network as NIR (out/network.nir; docs/deploy.md lists what NIR cannot express)
    nir: bool = False
    #: build the host binary and compare its first N test images with the simulator (0 = no check)
    verify_images: int = 0
    verify_input: VerifyInput = VerifyInput.device
    #: classify the first N test images with the host binary and print accuracy and µs/image (0 = none)
    test_images: int = 0
    #: cross-compile for Cortex-M7, run the first N test images under QEMU, compare with the host (0 = none)
    qemu_images: int = 0

    def __post_init__(self) -> None:
        _require(bool(self.run_dir) != bool(self.sweeps), "run_dir",
                 "give the run to deploy (run_dir=outputs/.../<run>) or sweeps to select it from "
                 "(sweeps=[multirun/paper]), not both")
        _require(bool(self.out), "out", "give the folder for the C sources, e.g. out=deploy/q8_wn")
        _require(self.replica >= 0, "replica", f"must be >= 0, got {self.replica}")
        for key in ("verify_images", "test_images", "qemu_images"):
            _require(getattr(self, key) >= 0, key, f"must be >= 0, got {getattr(self, key)}")


class Launcher(str, Enum):
    """How ``tinysnn.optimize`` runs the jobs of a training stage (Hydra's launcher plugins)."""

    #: one job after another
    basic = "basic"
    #: ``n_jobs`` at a time on this machine (hydra-joblib-launcher)
    joblib = "joblib"
    #: SLURM array tasks through submitit (conf/hydra/launcher/slurm.yaml; partition etc. via launcher_args)
    slurm = "slurm"
    #: the SLURM launcher's code path on this machine: submitit's local executor
    submitit_local = "submitit_local"


@dataclass
class QuantStudyConfig:
    """One scheme's part of an optimization study: every width × rounding × target (no widths: skipped)."""

    bits: list[int] = field(default_factory=list)
    roundings: list[Rounding] = field(default_factory=lambda: [Rounding.nearest])
    targets: list[QuantTarget] = field(default_factory=lambda: [QuantTarget.w, QuantTarget.wn])

    def check(self, key: str) -> None:
        for bits in self.bits:
            _require(2 <= bits <= MAX_BITS, f"{key}.bits", f"every width must be between 2 and {MAX_BITS}, got {bits}")
        for name in ("bits", "roundings", "targets"):
            values = getattr(self, name)
            _require(len(set(values)) == len(values), f"{key}.{name}", "lists a value twice; give each once")
        _require(not self.bits or (bool(self.roundings) and bool(self.targets)), f"{key}.roundings",
                 f"{key}.bits lists widths but there is no rounding or no target; give both, or {key}.bits=[] "
                 "to skip the scheme")


@dataclass
class ConstraintsConfig:
    """What the chosen model must meet (null = no limit); checked on validation accuracy, never on test."""

    #: memory footprint (paper Eq. 4), KB
    max_memory_kb: Optional[float] = None
    #: inference energy per image, µJ (operation-count model)
    max_energy_uj: Optional[float] = None
    #: validation accuracy, a fraction in [0, 1]
    min_accuracy: Optional[float] = None

    def check(self) -> None:
        for key, unit in (("max_memory_kb", "KB"), ("max_energy_uj", "µJ per image")):
            value = getattr(self, key)
            _require(value is None or value > 0, f"constraints.{key}",
                     f"must be > 0 ({unit}) or null (no limit), got {value}")
        _require(self.min_accuracy is None or 0 <= self.min_accuracy <= 1, "constraints.min_accuracy",
                 f"is a fraction of validation images in [0, 1] (0.85 = 85 %), got {self.min_accuracy}")


#: tinysnn.train keys that ``tinysnn.optimize`` sets itself in every training stage (``train`` and ``extra``
#: may not): each stage's network and rule (config groups), its quantization, its seeds; also hydra.*
OPTIMIZE_MANAGED = ("experiment", "dataset", "model", "learning", "scheme", "precision", "rounding", "target",
                    "quant.scheme", "quant.bits", "quant.bits_by_param", "quant.rounding", "quant.target",
                    "quant.reference", "quant.grid_bits", "quant.grid_roundings", "run.replicas", "seed")


@dataclass
class OptimizeConfig:
    """``python -m tinysnn.optimize optimize=<preset> [out=<folder>] [seeds=N] [constraints.*=…] [mu=…]``

    The paper's flow (Fig. 3) for one dataset, as cached, resumable stages: FP32 tinySNN and the
    FP32 Diehl & Cook baseline, their range analysis, PTQ, ITQ, selection (Eq. 3), report, deploy.
    Presets live in conf/optimize/.
    """

    dataset: DatasetName = DatasetName.mnist
    #: the study's folder: one sub-folder per stage, the report, the C sources, summary.txt
    out: str = "outputs/optimize"
    #: networks per configuration (seeds 0 … seeds − 1), trained side by side as replicas of one simulation
    seeds: int = 3
    #: tinysnn.train overrides shared by every training stage (the preset's protocol: run sizes, threads, …)
    train: list[str] = field(default_factory=list)
    #: yours, applied after ``train`` (a later value of a key wins), e.g. 'extra=["run.n_train=200"]'
    extra: list[str] = field(default_factory=list)
    #: a finished FP32 tinySNN run folder to quantize instead of training one (null = train it)
    reference: Optional[str] = None
    #: a finished FP32 baseline run folder (Diehl & Cook) instead of training one (null = train it)
    baseline: Optional[str] = None
    ptq: QuantStudyConfig = field(default_factory=QuantStudyConfig)
    itq: QuantStudyConfig = field(default_factory=QuantStudyConfig)
    #: μ in R = acc − μ·M_q/M_0 (paper Eq. 3)
    mu: float = 0.1
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    launcher: Launcher = Launcher.basic
    #: jobs at a time with launcher=joblib
    n_jobs: int = 2
    #: more Hydra overrides for the joblib or submitit launchers, e.g. 'launcher_args=["hydra.launcher.partition=gpu"]'
    launcher_args: list[str] = field(default_factory=list)
    #: test images the deployed C runtime is checked on against the simulator (0 = write the sources only)
    deploy_images: int = 300
    #: the report's figures (false: runs.csv and summary.md only)
    figures: bool = True
    #: print each stage's command and whether it would be reused, run nothing
    dry_run: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.out), "out", "give the study's folder, e.g. out=outputs/optimize/mnist")
        _require(self.seeds >= 1, "seeds", f"must be >= 1, got {self.seeds}")
        _require(self.n_jobs >= 1, "n_jobs", f"must be >= 1, got {self.n_jobs}")
        _require(self.mu >= 0, "mu", f"must be >= 0, got {self.mu}")
        _require(self.deploy_images >= 0, "deploy_images", f"must be >= 0, got {self.deploy_images}")
        self.ptq.check("ptq")
        self.itq.check("itq")
        self.constraints.check()
        for key in ("train", "extra"):
            for override in getattr(self, key):
                name = override.split("=", 1)[0].lstrip("+~")
                _require("=" in override, key, f"{override!r} is not a key=value override of tinysnn.train")
                _require(name not in OPTIMIZE_MANAGED and not name.startswith("hydra"), key,
                         f"{name} is set by tinysnn.optimize itself; use seeds=, dataset=, ptq.*, itq.*, "
                         "reference=, baseline= or launcher_args= instead")

    def selection(self) -> SelectionConfig:
        """Eq. 3's settings and the constraints, as tinysnn.selection takes them."""
        return SelectionConfig(mu=self.mu, max_memory_kb=self.constraints.max_memory_kb,
                               max_inference_uj=self.constraints.max_energy_uj,
                               min_accuracy=self.constraints.min_accuracy)


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="base_config", node=TrainConfig)
    store.store(name="select_schema", node=SelectConfig)
    store.store(name="report_schema", node=ReportConfig)
    store.store(name="ranges_schema", node=RangesConfig)
    store.store(name="deploy_schema", node=DeployConfig)
    store.store(name="optimize_schema", node=OptimizeConfig)


def steps_for(ms: float, dt_ms: float) -> int:
    """Whole time steps covering ``ms`` (refractory periods and delays)."""
    return int(math.ceil(ms / dt_ms - 1e-9))
