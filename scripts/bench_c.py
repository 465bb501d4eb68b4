"""Speed of generated C folders (``python -m tinysnn.deploy … out=FOLDER``): µs per image of the host
CLI and, with ``--callgrind``, instructions per image counted by valgrind (load-independent).

    python scripts/bench_c.py FOLDER... [--images 1000] [--repeats 7] [--arch= --arch=-march=native ...]
        [--callgrind 100] [--out bench.json]

Each folder is built once per ``--arch=VALUE`` (``make host ARCH=VALUE``: the Makefile's flags, then these;
default: the portable build and ``-march=native``; e.g. ``--arch="-O3 -march=native"``) into
``FOLDER/tinysnn_<arch>``; the timed runs go round all binaries ``--repeats`` times, so every binary
sees the same machine load, and the table gives the median (and range) of the CLI's µs per image
(process CPU time of the classification loop, first ``--images`` MNIST test images). ``--repeats 0``
only builds; ``--no-build`` times the binaries built before (to keep a measurement window short).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from tinysnn.data.datasets import default_data_root
from tinysnn.deploy.build import make, parse_output
from tinysnn.results import write_json


def binary_of(folder: Path, arch: str) -> Path:
    return folder / f"tinysnn_{re.sub(r'[^A-Za-z0-9]+', '_', arch).strip('_') or 'portable'}"


def build(folder: Path, arch: str) -> Path:
    (folder / "tinysnn").unlink(missing_ok=True)  # built with another ARCH, which make cannot tell
    make(folder, "host", {"ARCH": arch})
    shutil.copy(folder / "tinysnn", binary_of(folder, arch))
    return binary_of(folder, arch)


def run(binary: Path, images: int, data: Path) -> float:
    done = subprocess.run([str(binary), str(data / "t10k-images-idx3-ubyte"), str(data / "t10k-labels-idx1-ubyte"),
                           "-n", str(images)], capture_output=True, text=True, check=True)
    return parse_output(done.stdout).us_per_image


def instructions(binary: Path, images: int, data: Path) -> float:
    """Instructions per image of the whole CLI run (valgrind's callgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary),
                        str(data / "t10k-images-idx3-ubyte"), str(data / "t10k-labels-idx1-ubyte"), "-n", str(images)],
                       capture_output=True, text=True, check=True)
        total = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
    assert total is not None, "callgrind wrote no summary"
    return int(total.group(1)) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--arch", action="append", help="an ARCH value ('' = portable); repeat for several")
    parser.add_argument("--callgrind", type=int, default=0, help="images for the instruction count (0: none)")
    parser.add_argument("--no-build", action="store_true", help="time the binaries an earlier run built")
    parser.add_argument("--data", type=Path, default=default_data_root() / "MNIST" / "raw")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.arch = args.arch or ["", "-march=native"]
    binaries = {(str(folder), arch): binary_of(folder, arch) if args.no_build else build(folder, arch)
                for folder in args.folders for arch in args.arch}
    missing = [str(binary) for binary in binaries.values() if not binary.is_file()]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not built; run once without --no-build (--repeats 0 builds)")
    if not args.repeats:
        return
    times: dict[tuple[str, str], list[float]] = {key: [] for key in binaries}
    for _ in range(args.repeats):
        for key, binary in binaries.items():
            times[key].append(run(binary, args.images, args.data))
    rows = []
    print(f"| folder | ARCH | µs/image median (min–max, {args.repeats} runs × {args.images} images) "
          + ("| instructions/image |" if args.callgrind else "|"))
    print("|---|---|---:|" + ("---:|" if args.callgrind else ""))
    for (folder, arch), binary in binaries.items():
        us = times[folder, arch]
        row = {"folder": folder, "arch": arch, "us_per_image": us, "median": statistics.median(us)}
        line = f"| {folder} | {arch or '(portable)'} | {row['median']:.1f} ({min(us):.1f}–{max(us):.1f}) |"
        if args.callgrind:
            row["instructions"] = instructions(binary, args.callgrind, args.data)
            line += f" {row['instructions'] / 1e6:.3f} M |"
        rows.append(row)
        print(line)
    if args.out:
        write_json(args.out, {"images": args.images, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
