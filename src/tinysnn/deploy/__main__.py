"""``python -m tinysnn.deploy run_dir=<quantized run> out=<folder> [verify_images=N] [test_images=N]
[qemu_images=N] [prune=true] [nir=true]``: write the C99 runtime of a quantized tinySNN run, and optionally
check it. ``prune=true`` drops the neurons without a class and the zero-weight synapses.

* ``verify_images=N``: build the host binary, classify the first N test images, and compare the
  predictions and spike counts with the simulator's (device encoder, or with ``verify_input=file``
  the simulator's Poisson draws read by the C CLI from a spikes file); any mismatch exits with 2.
* ``test_images=N``: the host binary's accuracy and µs per image on the first N test images.
* ``sweeps=[...]`` instead of ``run_dir``: deploy the run that ``python -m tinysnn.selection`` would
  choose (Eq. 3 with ``selection.*``) among the deployable runs (tinySNN, no stochastic rounding).
* ``nir=true``: also write ``out/network.nir`` (tinysnn.deploy.nir_export).
* ``qemu_images=N``: cross-compile for Cortex-M7, run under QEMU (mps2-an500), and compare its
  predictions with the host binary's; prints flash and RAM read from the ELF.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..app import command
from ..config import DeployConfig, Encoding, VerifyInput
from ..data import Dataset, load_dataset
from ..data.datasets import default_data_root
from ..record import load_candidates
from ..results import RecordError
from ..selection import choose
from .build import run_host, run_qemu
from .codegen import write_sources
from .footprint import m7_footprint
from .model import DeployModel
from .nir_export import write_nir
from .verify import compare, simulate


def _write_idx(folder: Path, test: Dataset, n: int) -> tuple[Path, Path]:
    """The first ``n`` test images and labels as plain IDX files (what the C CLI reads)."""
    images, labels = folder / "images-idx3-ubyte", folder / "labels-idx1-ubyte"
    images.write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + test.images[:n].numpy().tobytes())
    labels.write_bytes(struct.pack(">II", 0x801, n) + test.labels[:n].to(torch.uint8).numpy().tobytes())
    return images, labels


def _check(model: DeployModel, out: Path, config: DeployConfig, test: Dataset, folder: Path) -> None:
    """The checks asked for: verify against the simulator, host accuracy and speed, QEMU."""
    n_all = min(len(test), max(config.verify_images, config.test_images, config.qemu_images))
    images_file, labels_file = _write_idx(folder, test, n_all)
    if config.verify_images:
        n = min(config.verify_images, n_all)
        images = test.images.reshape(len(test), -1)[:n]
        spikes = folder / "spikes.bin" if config.verify_input is VerifyInput.file else None
        encoding = Encoding.device if spikes is None else Encoding.poisson
        simulated = simulate(model, images, encoding, spikes_file=spikes)
        device = run_host(out, images_file, labels_file, n, counts=True, spikes=spikes)
        compare(simulated, device, f"verify ({config.verify_input.value} spikes)")
        print(f"verified: {n} test images, predictions and spike counts identical to the simulator "
              f"({config.verify_input.value} spikes); accuracy {device.accuracy:.4f}")
    if config.test_images:
        n = min(config.test_images, n_all)
        host = run_host(out, images_file, labels_file, n)
        print(f"host: accuracy {host.accuracy:.4f} on {n} test images, {host.us_per_image:.1f} µs/image")
    if config.qemu_images:
        n = min(config.qemu_images, n_all)
        qemu = run_qemu(out, images_file, labels_file, n)
        reference = run_host(out, images_file, labels_file, n, counts=True)
        if (qemu.predictions.size != n or not np.array_equal(qemu.predictions, reference.predictions)
                or not np.array_equal(qemu.counts, reference.counts)):
            raise RecordError(f"QEMU (Cortex-M7) and host results differ on the first {n} test images")
        print(f"qemu: Cortex-M7 predictions and spike counts identical to the host on {n} test images "
              f"(accuracy {qemu.accuracy:.4f}); {m7_footprint(out).describe()}")


def _selected_run(config: DeployConfig) -> str:
    """The run that selection (Eq. 3, tinysnn.selection) chooses among the deployable runs under ``sweeps``."""
    candidates = [c for c in load_candidates([Path(f) for f in config.sweeps], config.selection.readout)
                  if c.topology == "tinysnn" and c.rounding != "stochastic"]
    if len({c.dataset for c in candidates}) > 1:
        raise RecordError("the sweeps hold runs of several datasets; give the sweeps of one dataset")
    choice = choose(candidates, config.selection)
    if choice is None:
        raise RecordError(f"no deployable run (tinySNN, not stochastic rounding) under {', '.join(config.sweeps)} "
                          "meets the selection's constraints")
    print(f"selected (μ = {config.selection.mu}): {choice.name} in {choice.path}")
    return choice.path


def deploy(config: DeployConfig) -> None:
    run_dir = config.run_dir or _selected_run(config)
    model = DeployModel.load(run_dir, config.replica, config.prune)
    out = write_sources(model, config.out, config.prune)
    print(f"{out}: C99 sources of {model.label} from {model.run_dir}")
    if config.nir:
        print(f"{write_nir(model, out / 'network.nir')}: the network as a NIR graph")
    if config.verify_images or config.test_images or config.qemu_images:
        root = Path(model.config.dataset.root) if model.config.dataset.root else default_data_root()
        test = load_dataset(model.config.dataset.name.value, "test", root)
        with tempfile.TemporaryDirectory() as folder:
            _check(model, out, config, test, Path(folder))


main = command("deploy", deploy)

if __name__ == "__main__":
    main()
