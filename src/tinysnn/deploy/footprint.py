"""Flash and RAM of the Cortex-M7 build, read from the ELF files (pyelftools).

* classifier: the runtime and model objects (``m7/tinysnn.o``, ``m7/model.o``): flash = .text +
  .rodata (+ the .data image), RAM = .data + .bss, plus the stack bound from GCC's
  ``-fstack-usage`` (the frames of every runtime function summed, an upper bound on any call chain);
* program: the linked ``tinysnn_m7.elf`` with the CLI, newlib's stdio and semihosting;
* Eq. 4 (tinysnn.cost.memory) of the deployed layer, M = N_w·B_w + Σ_k N_n,k·B_n,k, where a pruned
  model counts only its non-zero synapses in N_w.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..cost.memory import BitWidths, memory_report
from ..results import RecordError
from .build import make
from .model import DeployModel

KB = 1024.0


@dataclass(frozen=True)
class Footprint:
    flash: int  # bytes: code, constants, .data image
    ram: int  # bytes: .data + .bss
    stack: int  # bytes: bound on the classifier's stack
    program_flash: int
    program_ram: int

    def describe(self) -> str:
        return (f"classifier flash {self.flash / KB:.1f} KB, RAM {self.ram / KB:.1f} KB + stack ≤ {self.stack} B; "
                f"whole program flash {self.program_flash / KB:.1f} KB, RAM {self.program_ram / KB:.1f} KB")

    def to_dict(self) -> dict[str, int]:
        return {"flash": self.flash, "ram": self.ram, "stack": self.stack, "program_flash": self.program_flash,
                "program_ram": self.program_ram}


def section_sizes(path: Path) -> tuple[int, int]:
    """(flash, RAM) bytes of an ELF file (object or executable): allocated sections by kind."""
    try:
        from elftools.elf.constants import SH_FLAGS
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise RecordError("reading ELF sizes needs pyelftools: pip install -e '.[deploy]'") from None
    flash = ram = 0
    with path.open("rb") as f:
        for section in ELFFile(f).iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or section.name.startswith(".stack"):
                continue
            size = section["sh_size"]
            writable = bool(flags & SH_FLAGS.SHF_WRITE)
            if section["sh_type"] == "SHT_NOBITS":
                ram += size  # .bss
            elif writable:
                ram += size  # .data: RAM, and its image in flash
                flash += size
            else:
                flash += size  # .text, .rodata, vectors, exception tables
    return flash, ram


def stack_bound(folder: Path) -> int:
    """Σ of the frames GCC reports (-fstack-usage) for the runtime's functions."""
    usage = folder / "m7" / "tinysnn.su"
    if not usage.is_file():
        raise RecordError(f"{usage} is missing: `make m7-objects` writes it")
    return sum(int(line.split("\t")[1]) for line in usage.read_text().splitlines() if line.strip())


def m7_footprint(folder: Path) -> Footprint:
    """Build the M7 objects and ELF in ``folder`` and measure them."""
    make(folder, "m7-objects")
    make(folder, "m7")
    parts = [section_sizes(folder / "m7" / name) for name in ("tinysnn.o", "model.o")]
    program_flash, program_ram = section_sizes(folder / "tinysnn_m7.elf")
    return Footprint(flash=sum(p[0] for p in parts), ram=sum(p[1] for p in parts), stack=stack_bound(folder),
                     program_flash=program_flash, program_ram=program_ram)


def eq4_bytes(model: DeployModel, pruned: bool) -> float:
    """Eq. 4 of the deployed neurons; ``pruned``: N_w counts the non-zero synapses only."""
    bits = model.spec.widths() if not model.fp32 else BitWidths()
    config = dataclasses.replace(model.config.model, n_neurons=int(model.keep.sum()))
    total = memory_report(config, bits).total_bits
    if pruned:
        total -= int((model.weights == 0).sum()) * bits.weights
    return total / 8
