"""The C99 runtime of ``python -m tinysnn.deploy``: the device encoder, code generation, bit-exact
agreement with the simulator (host build), the Cortex-M7 build under QEMU, and one-line errors."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysnn.checkpoint import load_checkpoint, save_checkpoint
from tinysnn.config import (
    DatasetConfig,
    DeployConfig,
    Encoding,
    ModelConfig,
    QuantConfig,
    QuantTarget,
    Rounding,
    Scheme,
    SimConfig,
    Topology,
    TrainConfig,
    VerifyInput,
    to_plain,
)
from tinysnn.data import load_dataset
from tinysnn.data.datasets import default_data_root
from tinysnn.data.idx import write_idx
from tinysnn.deploy.__main__ import _write_idx, deploy
from tinysnn.deploy.build import CliRun, run_host
from tinysnn.deploy.codegen import NarrowState, reciprocals, write_sources
from tinysnn.deploy.model import DeployModel
from tinysnn.deploy.verify import Simulated, compare, simulate
from tinysnn.deploy.weights import Packing, WeightTable
from tinysnn.device_encoding import LN2_Q, DeviceEncoder, interval_tables, log_table
from tinysnn.network import NetworkConstants, NetworkParams
from tinysnn.quant import FixedPointQuantizer, QuantSpec
from tinysnn.quant.export import export_model
from tinysnn.quant.observe import Interval, Ranges
from tinysnn.record import read_record
from tinysnn.results import RecordError, write_json

from .conftest import requires_mnist

N_NEURONS = 40
SIM = SimConfig(presentation_ms=100.0)
RANGES = Ranges(weights=Interval(0.0, 0.3), theta=Interval(0.0, 20.0), v_th=Interval(13.0, 33.0),
                v_mem=Interval(-300.0, 40.0))
HAS_CC = shutil.which("cc") is not None and shutil.which("make") is not None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="needs a C compiler (cc) and make")
HAS_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


def synthetic_data(root: Path, n: int = 300) -> Path:
    """IDX test files of ``n`` sparse random images (about a fifth of the pixels lit) under root/MNIST/raw."""
    g = torch.Generator().manual_seed(3)
    lit = torch.rand(n, 28, 28, generator=g) < 0.2
    images = (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8) * lit
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / "t10k-images-idx3-ubyte", images, compress=False)
    write_idx(raw / "t10k-labels-idx1-ubyte", torch.randint(0, 10, (n,), generator=g).to(torch.uint8), compress=False)
    return root


def write_run(folder: Path, data_root: Path, bits: int | None, target: QuantTarget, rounding: Rounding,
              weights: torch.Tensor | None = None, theta: torch.Tensor | None = None,
              assignments: torch.Tensor | None = None, model: ModelConfig | None = None,
              sim: SimConfig = SIM, ranges: Ranges = RANGES) -> Path:
    """A run folder (metrics.json config, checkpoint.pt, and export.pt when quantized: bits not None) as the
    pipeline writes it."""
    model = model or ModelConfig(topology=Topology.tinysnn, n_neurons=N_NEURONS, w_lateral_mv=20.0)
    quant = (QuantConfig(scheme=Scheme.ptq, bits=bits, rounding=rounding, target=target, reference="unused")
             if bits is not None else QuantConfig())
    config = TrainConfig(dataset=DatasetConfig(root=str(data_root)), model=model, sim=sim, quant=quant)
    g = torch.Generator().manual_seed(bits or 32)
    if weights is None:
        weights = torch.rand(1, model.n_inputs, model.n_neurons, generator=g) * 0.3
        theta = torch.rand(1, model.n_neurons, generator=g) * 20
        assignments = torch.randint(-1, 10, (1, model.n_neurons), generator=g)
    assert theta is not None and assignments is not None
    params = NetworkParams(weights=weights.clone(), theta=theta.clone())
    if bits is not None:
        spec = QuantSpec.build(quant, ranges)
        quantizer = FixedPointQuantizer([spec], [torch.Generator()])
        quantizer.store_weights_(params.weights)
        quantizer.store_theta_(params.theta)
        network = NetworkConstants.build(model, sim)
        export_model(folder / "export.pt", params, spec, network, sim.steps, assignments)
    save_checkpoint(folder / "checkpoint.pt", weights=params.weights, theta=params.theta, assignments=assignments,
                    proportions=torch.zeros(1, model.n_neurons, 10), config=to_plain(config), rng_states=[])
    write_json(folder / "metrics.json", {"config": to_plain(config)})
    return folder


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return synthetic_data(tmp_path_factory.mktemp("data"))


def test_device_encoder_fires_at_the_pixel_rate_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(20, 784, generator=g) * 255).to(torch.uint8) * (torch.rand(20, 784, generator=g) < 0.3)
    sim = SimConfig(presentation_ms=1000.0)
    encoder = DeviceEncoder.build(sim, base_seed=7)
    events = encoder.events(images, torch.arange(20), attempt=0)
    expected = float(images.double().sum()) / 255 * sim.max_rate_hz  # Σ p/255 · rate · 1 s
    assert abs(events.row.numel() / expected - 1) < 0.02
    assert bool((events.time[1:] >= events.time[:-1]).all())
    assert bool((images.reshape(-1)[events.row] > 0).all())  # dark pixels never fire
    # an image's spikes depend on its seed (index) and attempt only, not on its batch
    alone = encoder.events(images[5:6], torch.tensor([5]), attempt=0)
    mine = events.stream == 5
    assert torch.equal(alone.time, events.time[mine]) and torch.equal(alone.row, events.row[mine] - 5 * 784)
    retry = encoder.events(images[5:6], torch.tensor([5]), attempt=1)
    assert retry.row.numel() > alone.row.numel()  # the retry rate is higher


def test_packing_puts_low_codes_first_in_rows_of_whole_vectors():
    codes = np.arange(64).reshape(1, 64) * 7 % 4  # 2 bits: 16 bytes, neuron p·16 + j in part p of byte j
    words = Packing.for_bits(2).pack(codes)
    assert words.shape == (1, 16)
    assert words[0, 5] == codes[0, 5] | codes[0, 21] << 2 | codes[0, 37] << 4 | codes[0, 53] << 6
    # rows are padded to whole 16-byte vectors (zero codes): the runtime's vectorised loop has no epilogue
    assert Packing.for_bits(4).pack(np.array([[5, 10, 7]])).tolist() == [[5, 10, 7] + [0] * 13]
    assert [Packing.for_bits(4).words(n) for n in (32, 33, 400)] == [16, 32, 208]
    assert (Packing.for_bits(3).per_word, Packing.for_bits(12).ctype) == (2, "uint16_t")
    assert Packing.for_bits(12).words(40) == 40  # 80 bytes: whole vectors already


def test_encoder_reciprocals_divide_exactly():
    """The C encoder's ⌊L / D⌋ = (L·M) >> k for every L it can form (leading zeros · ln 2 + a log table entry)."""
    multiplier, shift = reciprocals(interval_tables(SimConfig()))
    numerators = (np.arange(32, dtype=np.uint64)[:, None] * np.uint64(LN2_Q) + log_table()[None, :]).reshape(-1)
    divisors = interval_tables(SimConfig())
    for attempt in range(divisors.shape[0]):
        d = divisors[attempt, 1:].astype(np.uint64)  # pixel value 0 never fires
        m, k = multiplier[attempt, 1:].astype(np.uint64), shift[attempt, 1:].astype(np.uint64)
        assert np.array_equal((numerators[:, None] * m) >> k, numerators[:, None] // d)


def _wide_step(c, syn, inhibitors, leak, offset, s, weight_shift, inh, u_min):
    """tinysnn.c's integrate: c + ⌊(Σc_w·2^(s−n_w+n_V) − a·c·2^(s−f) + o) / 2^s⌋ − K·c_inh, saturated below."""
    return np.maximum(c + ((syn * 2**weight_shift - leak * c + offset) >> s) - inhibitors * inh, u_min)


@pytest.mark.parametrize("weight_bits,membrane,rounding,narrow", [
    (8, (8, -1), "nearest", True), (8, (8, -1), "truncate", True), (6, (6, -3), "nearest", True),
    (4, (8, 2), "nearest", True), (6, (10, 1), "nearest", False), (8, (16, 4), "nearest", False)])
def test_the_16_bit_membrane_step_equals_the_wide_one(weight_bits, membrane, rounding, narrow):
    """integrate_narrow (16-bit lanes) against integrate, for every stored u, every step sum within the row limit
    and a range of inhibitor counts; every intermediate must fit the 16 bits the C keeps of it."""
    f, decay, inh = 16, 64884, 60  # the leak of the 100 ms membrane at 1 ms steps, Q16
    u_min, u_max = -(2 ** (membrane[0] - 1)), 2 ** (membrane[0] - 1) - 1
    s = max(f, weight_bits - membrane[1])
    weight_shift = s - weight_bits + membrane[1]
    leak, offset = (2**f - decay) * 2 ** (s - f), 2 ** (s - 1) if rounding == "nearest" else 0
    max_code = 2**weight_bits - 1
    state = NarrowState.build(leak, offset, s, weight_shift, u_min, u_max, max_code, 0, np.array([u_max // 2, u_max]))
    assert (state is not None) == narrow
    if state is None:
        return
    syn = np.arange(state.limit * max_code + 1, dtype=np.int64)
    for c in range(u_min, u_max + 1):
        g = state.g_offset - state.g_leak * c
        assert 0 <= g < 2**16
        total = syn + (g >> state.g_shift)
        assert total.max() < 2**16
        for inhibitors in (0, 1, 3, 400):
            new = c + (total >> state.sum_shift) - (min(inhibitors * inh, state.inh_cap) + state.g_bias)
            assert new.min() >= -(2**15) and new.max() < 2**15
            wide = _wide_step(c, syn, inhibitors, leak, offset, s, weight_shift, inh, u_min)
            assert np.array_equal(np.maximum(new, u_min), wide)


@needs_cc
@pytest.mark.parametrize("bits,target,rounding", [
    (8, QuantTarget.wn, Rounding.nearest), (8, QuantTarget.wn, Rounding.truncate),
    (16, QuantTarget.wn, Rounding.nearest), (6, QuantTarget.wn, Rounding.nearest),
    (8, QuantTarget.w, Rounding.nearest), (4, QuantTarget.w, Rounding.nearest), (2, QuantTarget.w, Rounding.truncate),
    (None, QuantTarget.w, Rounding.nearest),  # FP32: float rows summed in the simulator's order
])
def test_host_build_is_bit_exact_with_the_simulator(tmp_path, data_root, capsys, bits, target, rounding):
    run = write_run(tmp_path / "run", data_root, bits, target, rounding)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), verify_images=200))
    out = capsys.readouterr().out
    assert "verified: 200 test images" in out
    assert (tmp_path / "c" / "tinysnn").is_file() and not list(tmp_path.glob(".c.*"))  # no staging left


def test_weight_table_prunes_zero_synapses_into_sparse_rows():
    codes = np.zeros((4, 8), dtype=np.int64)
    codes[1] = [3, 1, 2, 3, 1, 2, 3, 1]  # dense: 4 bytes at 4 bits, 16 bytes as entries
    codes[2, 5] = 7  # one entry (2 bytes) beats a 4-byte row
    table = WeightTable.build(codes, bits=4, prune=True)
    assert table.dense_row.tolist() == [-1, 0, -1, -1] and table.sparse_start.tolist() == [0, 0, 0, 1, 1]
    assert table.sparse.tolist() == [5 << 4 | 7] and table.entry_ctype == "uint16_t"
    assert table.nbytes() < WeightTable.build(codes, bits=4, prune=False).nbytes() + 4 * 2 + 5 * 4


@needs_cc
@pytest.mark.parametrize("bits,target", [(4, QuantTarget.w), (8, QuantTarget.wn), (2, QuantTarget.w)])
def test_pruned_model_is_bit_exact_with_the_pruned_simulator(tmp_path, data_root, capsys, bits, target):
    """Neurons without a class and zero-weight synapses dropped: sparse rows, all-zero rows, a padded layer."""
    g = torch.Generator().manual_seed(11)
    weights = torch.rand(1, 784, N_NEURONS, generator=g) * 0.3 * (torch.rand(1, 784, N_NEURONS, generator=g) < 0.3)
    weights[:, :100] = 0  # inputs without any synapse
    assignments = torch.randint(0, 10, (1, N_NEURONS), generator=g)
    assignments[0, [3, 17, 30]] = -1  # 37 neurons stay: not a whole number of packed words
    run = write_run(tmp_path / "run", data_root, bits, target, Rounding.nearest, weights=weights,
                    theta=torch.rand(1, N_NEURONS, generator=g) * 20, assignments=assignments)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), verify_images=200, prune=True))
    out = capsys.readouterr().out
    assert "37 of 40 neurons" in out and "verified: 200 test images" in out
    assert "#define TINYSNN_SPARSE 1" in (tmp_path / "c" / "model.h").read_text()


@needs_cc
@pytest.mark.parametrize("target", [QuantTarget.wn, QuantTarget.w])
def test_narrow_sums_spill_exactly(tmp_path, data_root, target):
    """Steps with more rows than the 16-bit sums hold take the spilling path (int32 sums, the wide step): forced
    here on nearly every step by a limit of 2 rows."""
    run = write_run(tmp_path / "run", data_root, 8, target, Rounding.nearest)
    model = DeployModel.load(run)
    out = write_sources(model, tmp_path / "c")
    header = (out / "model.h").read_text()
    assert re.search(r"#define TINYSNN_SYN_LIMIT \d+u", header)
    (out / "model.h").write_text(re.sub(r"#define TINYSNN_SYN_LIMIT \d+u", "#define TINYSNN_SYN_LIMIT 2u", header))
    test = load_dataset("mnist", "test", data_root)
    images, labels = _write_idx(tmp_path, test, 100)
    simulated = simulate(model, test.images.reshape(len(test), -1)[:100], Encoding.device)
    compare(simulated, run_host(out, images, labels, 100, counts=True), "spilled")


@needs_cc
@pytest.mark.parametrize("target", [QuantTarget.wn, QuantTarget.w])
def test_inhibition_delay_beyond_the_refractory_period(tmp_path, data_root, capsys, target):
    """delay 7 > 5 refractory steps: a neuron is not inhibited by its own spike (the runtime's own-correction)."""
    model = ModelConfig(topology=Topology.tinysnn, n_neurons=N_NEURONS, w_lateral_mv=20.0, lateral_delay_steps=7)
    run = write_run(tmp_path / "run", data_root, 8, target, Rounding.nearest, model=model)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), verify_images=200))
    assert "verified: 200 test images" in capsys.readouterr().out


@needs_cc
def test_spikes_file_mode_reproduces_the_poisson_stream(tmp_path, data_root, capsys):
    run = write_run(tmp_path / "run", data_root, 8, QuantTarget.wn, Rounding.nearest)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), verify_images=100, verify_input=VerifyInput.file))
    assert "identical to the simulator (file spikes)" in capsys.readouterr().out


@needs_cc
def test_simulator_evaluation_and_host_accuracy_agree(tmp_path, data_root, capsys):
    run = write_run(tmp_path / "run", data_root, 8, QuantTarget.wn, Rounding.nearest)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), test_images=300))
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("host:")][0]
    model = DeployModel.load(run)
    test = load_dataset("mnist", "test", data_root)
    simulated = simulate(model, test.images.reshape(len(test), -1), Encoding.device)
    accuracy = float((torch.from_numpy(simulated.predictions) == test.labels).double().mean())
    assert f"accuracy {accuracy:.4f} on 300 test images" in line


def _as_candidate(run: Path, bits: int, rounding: Rounding, val_accuracy: float) -> None:
    """Add what selection reads (tinysnn.record.candidate_of) to a run's metrics.json."""
    metrics = read_record(run / "metrics.json")
    metrics.update(dataset="mnist", topology="tinysnn", train={"images": 0}, accuracy={"all_activity": 0.5},
                   val={"accuracy": {"all_activity": val_accuracy}},
                   memory={"total_bytes": 784 * N_NEURONS * bits / 8, "normalized": bits / 32},
                   energy_pj_per_image={"inference": None, "train": None},
                   quant={"active": True, "scheme": "ptq", "bits": bits, "target": "w", "rounding": rounding.value})
    write_json(run / "metrics.json", metrics)


@needs_cc
def test_deploys_the_model_selection_chooses(tmp_path, data_root, capsys):
    sweep = tmp_path / "sweep"
    runs = [(8, Rounding.nearest, 0.80), (4, Rounding.nearest, 0.79), (2, Rounding.stochastic, 0.9)]
    for bits, rounding, val in runs:
        run = write_run(sweep / f"q{bits}", data_root, bits, QuantTarget.w, rounding)
        _as_candidate(run, bits, rounding, val)
    # μ = 0.1: 0.80 − 0.1·8/32 = 0.775 < 0.79 − 0.1·4/32 = 0.7775; the stochastic run is not deployable
    deploy(DeployConfig(sweeps=[str(sweep)], out=str(tmp_path / "c"), verify_images=50))
    out = capsys.readouterr().out
    assert f"selected (μ = 0.1): tinysnn PTQ 4-bit qW nearest in {sweep / 'q4'}" in out
    assert "verified: 50 test images" in out


def test_nir_export_round_trips_through_nirs_reader(tmp_path, data_root):
    nir = pytest.importorskip("nir", reason="needs the nir package (pip install -e '.[deploy]')")
    run = write_run(tmp_path / "run", data_root, 8, QuantTarget.wn, Rounding.nearest)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), nir=True))
    graph = nir.read(tmp_path / "c" / "network.nir")
    model = DeployModel.load(run)
    assert set(graph.nodes) == {"input", "x_to_e", "exc", "inhibition_delay", "lateral", "output"}
    assert ("lateral", "exc") in graph.edges and ("exc", "inhibition_delay") in graph.edges
    assert np.array_equal(graph.nodes["x_to_e"].weight, model.weights.double().numpy().T)
    assert np.allclose(graph.nodes["exc"].v_threshold, model.theta.double().numpy() + 13.0)
    assert graph.nodes["lateral"].weight[0, 1] == -20.0 and graph.nodes["lateral"].weight[0, 0] == 0.0
    assert graph.metadata["refractory_steps"] == 5 and graph.metadata["weight_format"] == "UQ0.8"


def test_a_mismatch_names_the_image():
    simulated = Simulated(np.array([1, 2]), np.array([[0, 3], [1, 1]]))
    same = CliRun(np.array([1, 2]), np.array([0, 0]), np.array([[0, 3], [1, 1]]), 0.0, 1.0)
    compare(simulated, same, "check")
    with pytest.raises(RecordError, match="image 1 is class 3 in C"):
        compare(simulated, CliRun(np.array([1, 3]), same.labels, same.counts, 0.0, 1.0), "check")
    with pytest.raises(RecordError, match="image 0: spike counts differ at 1 neurons"):
        compare(simulated, CliRun(same.predictions, same.labels, np.array([[0, 4], [1, 1]]), 0.0, 1.0), "check")


def test_deploy_refuses_what_it_cannot_run(tmp_path, data_root):
    with pytest.raises(RecordError, match="does not exist"):
        DeployModel.load(tmp_path / "nowhere")
    run = write_run(tmp_path / "stochastic", data_root, 8, QuantTarget.wn, Rounding.stochastic)
    with pytest.raises(RecordError, match="rounding=truncate or rounding=nearest"):
        DeployModel.load(run)
    run = write_run(tmp_path / "noexport", data_root, 8, QuantTarget.wn, Rounding.nearest)
    (run / "export.pt").unlink()
    with pytest.raises(RecordError, match="quant.export=true"):
        DeployModel.load(run)
    diehl_cook = tmp_path / "diehl_cook"
    diehl_cook.mkdir()
    write_json(diehl_cook / "metrics.json", {"config": to_plain(TrainConfig())})
    with pytest.raises(RecordError, match="model=tinysnn"):
        DeployModel.load(diehl_cook)


def test_command_line_errors_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tinysnn.deploy", f"run_dir={tmp_path / 'missing'}",
                           f"out={tmp_path / 'c'}"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: run folder") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


@needs_cc
@pytest.mark.skipif(not HAS_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm "
                    "(apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
def test_cortex_m7_under_qemu_matches_the_host(tmp_path, data_root, capsys):
    run = write_run(tmp_path / "run", data_root, 4, QuantTarget.w, Rounding.nearest)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), qemu_images=100))
    out = capsys.readouterr().out
    assert "identical to the host on 100 test images" in out and "classifier flash" in out


@needs_cc
@requires_mnist
@pytest.mark.parametrize("bits,target", [(8, QuantTarget.wn), (4, QuantTarget.w)])
def test_the_reference_model_on_real_mnist(tmp_path, capsys, bits, target):
    """PTQ of the committed FP32 reference (weights and θ quantized as a PTQ run does), 200 test images."""
    reference = Path(__file__).resolve().parents[1] / "docs" / "runs" / "mnist_tinysnn_adaptive"
    checkpoint = load_checkpoint(reference / "checkpoint.pt")
    ranges = Ranges.from_dict(read_record(reference / "metrics.json")["ranges"])
    model = ModelConfig(topology=Topology.tinysnn)
    run = write_run(tmp_path / "run", default_data_root(), bits, target, Rounding.nearest,
                    weights=checkpoint["weights"][:1], theta=checkpoint["theta"][:1],
                    assignments=checkpoint["assignments"][:1], model=model, sim=SimConfig(), ranges=ranges)
    deploy(DeployConfig(run_dir=str(run), out=str(tmp_path / "c"), verify_images=200))
    assert "verified: 200 test images" in capsys.readouterr().out
