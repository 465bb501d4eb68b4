"""The deployment table of docs/deploy.md: for each quantized run, the C runtime's test accuracy and
µs/image (host), the PyTorch simulator's µs/image at B=1 and batched (device encoder, one thread),
a bit-exactness check against the simulator, the Cortex-M7 check under QEMU, flash/RAM from the ELF
beside the Eq. 4 figure, and the smallest common flash class that holds the program.

    python scripts/deploy_table.py RUN_DIR... [--test 10000] [--verify 10000] [--qemu 100] [--prune]
        [--replicas 3] [--out t.json]

``--replicas R`` deploys and measures each of a run's first R replicas (its seeds) and ends with
the mean ± standard deviation of C accuracy and flash over them. ``--out`` is rewritten after every
row, and the rows it already holds are not measured again (an interrupted table resumes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path

import torch

from tinysnn.config import Encoding
from tinysnn.data import load_dataset
from tinysnn.data.datasets import default_data_root
from tinysnn.deploy.build import make, run_host, run_qemu
from tinysnn.deploy.codegen import write_sources
from tinysnn.deploy.footprint import eq4_bytes, m7_footprint
from tinysnn.deploy.model import DeployModel
from tinysnn.deploy.verify import compare, simulate
from tinysnn.results import read_json, write_json

FLASH_CLASSES_KB = (128, 256, 512, 1024, 2048)


def flash_class(size: int) -> str:
    for kb in FLASH_CLASSES_KB:
        if size <= kb * 1024:
            return f"{kb} KB" if kb < 1024 else f"{kb // 1024} MB"
    return "> 2 MB"


def simulator_us(model: DeployModel, images: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    simulate(model, images, Encoding.device, batch=batch)
    return 1e6 * (time.perf_counter() - start) / images.shape[0]


def measure(run_dir: Path, folder: Path, args: argparse.Namespace, prune: bool, replica: int = 0) -> dict:
    model = DeployModel.load(run_dir, replica, prune=prune)
    out = write_sources(model, folder / f"{run_dir.name}_r{replica}{'_pruned' if prune else ''}", prune)
    test = load_dataset("mnist", "test", default_data_root())
    n = min(len(test), max(args.test, args.verify, args.qemu))
    images_file, labels_file = folder / "images", folder / "labels"
    images_file.write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + test.images[:n].numpy().tobytes())
    labels_file.write_bytes(struct.pack(">II", 0x801, n) + test.labels[:n].to(torch.uint8).numpy().tobytes())
    flat = test.images.reshape(len(test), -1)
    row: dict = {"run": str(run_dir), "replica": replica, "model": model.label + (", pruned" if prune else ""),
                 "pruned": prune}
    host = run_host(out, images_file, labels_file, args.test)
    row.update(c_accuracy=host.accuracy, c_us=host.us_per_image, test_images=args.test)
    if args.verify:
        simulated = simulate(model, flat[:args.verify], Encoding.device)
        compare(simulated, run_host(out, images_file, labels_file, args.verify, counts=True), "verify")
        row["verified_images"] = args.verify
    torch.set_num_threads(1)
    row["sim_us_b1"] = simulator_us(model, flat[:args.bench_b1], batch=1)
    row["sim_us_batched"] = simulator_us(model, flat[:args.bench_batched], batch=args.bench_batched)
    if args.qemu:
        qemu = run_qemu(out, images_file, labels_file, args.qemu)
        row["qemu_images"] = args.qemu
        row["qemu_equal"] = bool((qemu.predictions == run_host(out, images_file, labels_file, args.qemu,
                                                               counts=True).predictions).all())
        fp = m7_footprint(out)
        row.update(fp.to_dict())
        row["flash_class"] = flash_class(fp.flash)
        row["program_flash_class"] = flash_class(fp.program_flash)
    row["eq4_bytes"] = eq4_bytes(model, prune)
    make(out, "clean")  # the host build again with the host's vector units (AVX2 here)
    make(out, "host", {"ARCH": "-march=native"})
    row["c_us_native"] = run_host(out, images_file, labels_file, args.test).us_per_image
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| model | C accuracy (test images) | C µs/image (-O2 / +ARCH=-march=native) | "
            "simulator µs/image B=1 / batched | bit-exact | "
            "QEMU = host | flash KB (classifier) | RAM KB + stack | Eq. 4 KB | flash class (classifier / program) |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['model']} | {100 * r['c_accuracy']:.2f} % ({r['test_images']}) | "
            f"{r['c_us']:.0f} / {r.get('c_us_native', float('nan')):.0f} | "
            f"{r['sim_us_b1']:.0f} / {r['sim_us_batched']:.0f} | {r.get('verified_images', '—')} images | "
            f"{'yes' if r.get('qemu_equal') else '—'} ({r.get('qemu_images', 0)}) | "
            f"{r.get('flash', 0) / 1024:.1f} | {r.get('ram', 0) / 1024:.1f} + {r.get('stack', 0)} B | "
            f"{r['eq4_bytes'] / 1024:.1f} | {r.get('flash_class', '—')} / {r.get('program_flash_class', '—')} |")
    return "\n".join(lines)


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def seed_summary(rows: list[dict]) -> str:
    """C accuracy and classifier flash, mean ± sample std over the replicas of each (run, pruned)."""
    groups: dict[tuple[str, bool], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["run"], row["pruned"]), []).append(row)
    lines = ["| model | seeds | C accuracy % | flash KB (classifier) |", "|---|---:|---:|---:|"]
    for group in groups.values():
        acc = [100 * r["c_accuracy"] for r in group]
        flash = [r.get("flash", 0) / 1024 for r in group]
        lines.append(f"| {group[0]['model']} | {len(group)} | {statistics.mean(acc):.2f} ± {_spread(acc):.2f} | "
                     f"{statistics.mean(flash):.1f} ± {_spread(flash):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--verify", type=int, default=0)
    parser.add_argument("--qemu", type=int, default=100)
    parser.add_argument("--bench-b1", type=int, default=50)
    parser.add_argument("--bench-batched", type=int, default=1000)
    parser.add_argument("--prune", action="store_true", help="also measure each run pruned (prune=true)")
    parser.add_argument("--replicas", type=int, default=1, help="measure each of the run's first R replicas (seeds)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # rows already in --out are kept, not measured again: an interrupted table resumes
    rows = read_json(args.out)["rows"] if args.out is not None and args.out.is_file() else []
    done = {(row["run"], row["pruned"], row["replica"]) for row in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            for prune in (False, True) if args.prune else (False,):
                for replica in range(args.replicas):
                    if (str(run), prune, replica) in done:
                        continue
                    rows.append(measure(run, Path(tmp), args, prune, replica))
                    print(json.dumps(rows[-1]), flush=True)
                    if args.out is not None:
                        write_json(args.out, {"rows": rows})
    print(markdown(rows))
    if args.replicas > 1:
        print(seed_summary(rows))


if __name__ == "__main__":
    main()
