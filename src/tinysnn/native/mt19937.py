"""torch's CPU generator (MT19937) run in C from each generator's own state (mt19937.c): torch.rand's
float32 uniforms (``rand_``) and the spikes of ``torch.rand(steps, A) < p`` listed without the draws
(``bernoulli_events``), several times faster than torch's per-element kernel (scripts/bench_draws.py).

Used only where it reproduces torch: CPU tensors and generators whose state has the layout mt19937.c
reads, and a probe at load that compares its draws with torch.rand's across a block boundary.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from typing import Iterator, Sequence

import torch

from .build import load

#: bytes of torch's CPU generator state (CPUGeneratorImplState) that mt19937.c knows
STATE_BYTES = 5056
#: torch.rand's float32 uniform keeps the low 24 bits of a 32-bit output: u = k · 2^−24
UNIFORM_BITS = 24


@functools.cache
def _library() -> ctypes.CDLL | None:
    library = load("mt19937")
    if library is None:
        return None
    pointer, int64 = ctypes.c_void_p, ctypes.c_int64
    library.bernoulli_events.restype = int64
    library.bernoulli_events.argtypes = [pointer, pointer, int64, int64, int64, pointer, pointer, int64, pointer]
    library.order_by_time.restype = None
    library.order_by_time.argtypes = [pointer, int64, int64, pointer, pointer]
    library.uniform_fill.restype = None
    library.uniform_fill.argtypes = [pointer, pointer, int64]
    return library if _reproduces_torch(library) else None


def _reproduces_torch(library: ctypes.CDLL) -> bool:
    """The library's uniforms and spikes equal torch's and leave the generator where torch does (over
    more than one 624-block)."""
    probability = torch.linspace(0.05, 0.95, 7)
    ours, theirs = torch.Generator().manual_seed(12345), torch.Generator().manual_seed(12345)
    if ours.get_state().numel() != STATE_BYTES:
        return False
    uniforms = _uniform(library, torch.empty(1000), ours)
    time, pixel = _bernoulli(library, thresholds(probability), _capacity(probability, 200), 200, ours)
    expected = torch.rand(1000, generator=theirs)
    listed = (torch.rand(200, 7, generator=theirs) < probability).nonzero(as_tuple=True)
    return (torch.equal(uniforms, expected) and torch.equal(time, listed[0]) and torch.equal(pixel, listed[1])
            and torch.equal(ours.get_state(), theirs.get_state()))


_switched_off = False


@contextlib.contextmanager
def switched_off() -> Iterator[None]:
    """Within it, ``applies`` is False: torch's path runs (tests and benchmarks compare the two)."""
    global _switched_off
    before, _switched_off = _switched_off, True
    try:
        yield
    finally:
        _switched_off = before


def applies(tensor: torch.Tensor, generators: Sequence[torch.Generator]) -> bool:
    """Whether the C draws run for these: CPU tensor and generators, and the C library built and sound."""
    on_cpu = tensor.device.type == "cpu" and all(g.device.type == "cpu" for g in generators)
    return on_cpu and not _switched_off and _library() is not None


def _uniform(library: ctypes.CDLL, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    state = generator.get_state()
    library.uniform_fill(state.data_ptr(), out.data_ptr(), out.numel())
    generator.set_state(state)
    return out


def rand_(out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``torch.rand(out.shape, generator=generator, out=out)`` (float32), in C where it applies."""
    if out.dtype == torch.float32 and out.is_contiguous() and applies(out, [generator]):
        library = _library()
        assert library is not None
        return _uniform(library, out, generator)
    return torch.rand(out.shape, generator=generator, device=out.device, dtype=out.dtype, out=out)


def thresholds(probability: torch.Tensor) -> torch.Tensor:
    """⌈p · 2^24⌉ (int32): an output's low 24 bits k satisfy k · 2^−24 < p exactly when k < ⌈p · 2^24⌉."""
    scaled = torch.ceil(probability.double() * 2.0 ** UNIFORM_BITS).clamp_(max=2.0 ** UNIFORM_BITS)
    return scaled.to(torch.int32).contiguous()


def _capacity(probability: torch.Tensor, steps: int) -> int:
    """Output slots per call: the expected spikes with a wide margin (a fuller list takes another call)."""
    expected = float(probability.double().sum()) * steps
    return int(expected + 8 * math.sqrt(expected)) + 2048


def _bernoulli(library: ctypes.CDLL, threshold: torch.Tensor, capacity: int, steps: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(step, index) of one generator's [steps, A] draws below ``threshold``; advances the generator."""
    active = threshold.numel()
    total = steps * active
    state = generator.get_state()
    listed = torch.zeros(1, dtype=torch.int64)
    times, pixels = [], []
    position = 0
    while position < total or not times:
        time = torch.empty(capacity, dtype=torch.int64)
        pixel = torch.empty(capacity, dtype=torch.int64)
        position = library.bernoulli_events(state.data_ptr(), threshold.data_ptr(), active, total, position,
                                            time.data_ptr(), pixel.data_ptr(), capacity, listed.data_ptr())
        n = int(listed)
        times.append(time[:n])
        pixels.append(pixel[:n])
    generator.set_state(state)
    if len(times) == 1:
        return times[0], pixels[0]
    return torch.cat(times), torch.cat(pixels)


def bernoulli_events(probability: torch.Tensor, steps: int,
                     generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(step, stream, index) of the spikes of ``torch.rand(steps, A, generator=generators[s]) < probability``
    ([A] float32) for each stream s, ordered by step, stream, index (where ``applies``)."""
    library = _library()
    assert library is not None, "mt19937.bernoulli_events where it does not apply"
    threshold = thresholds(probability)
    capacity = _capacity(probability, steps)
    parts = [_bernoulli(library, threshold, capacity, steps, g) for g in generators]
    if len(parts) == 1:
        time, pixel = parts[0]
        return time, torch.zeros_like(time), pixel
    time = torch.cat([t for t, _ in parts])
    pixel = torch.cat([p for _, p in parts])
    stream = torch.repeat_interleave(torch.arange(len(parts)), torch.tensor([t.numel() for t, _ in parts]))
    order, scratch = torch.empty_like(time), torch.zeros(steps + 1, dtype=torch.int64)
    library.order_by_time(time.data_ptr(), time.numel(), steps, scratch.data_ptr(), order.data_ptr())
    return time[order], stream[order], pixel[order]
