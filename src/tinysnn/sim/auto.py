"""``sim.integrator=auto``: the compiled kernel where it applies and pays for its build, else the step path.

The compiled kernels are bit-identical to the step path (``lif_window``), so the choice changes
speed only. ``closed_form`` is never chosen: it sums in another order, so its weights equal the
step path's only up to float32 rounding.
"""

from __future__ import annotations

import functools
import warnings

import torch

from ..config import Integrator
from ..quant import FixedPointQuantizer, Quantizer

#: images a pass must present (training: images × epochs, whatever the replicas; inference: the
#: pass's images) for the compiled kernel to pay for its build, keyed by (fixed-point neurons,
#: training): build seconds ÷ seconds saved per image, for an inference pass a third of that (a
#: run's label, validation and test passes share one build). Measured with scripts/bench_sim.py
#: on this project's 2-core CPU with other jobs running (load 2–3; docs/performance.md,
#: "qWN through the compiled kernel"): builds from an empty inductor cache of 46 s (FP32
#: training), 89 s (8-bit qWN training), 53 s (FP32 inference), 29 s (qWN inference); saved per
#: image 12.6 ms (FP32 training, R=1), 25.7 ms (qWN, nearest; 60 stochastic), 2.4 ms (FP32
#: inference, B=1000, one thread), 1.7 ms (qWN, nearest; 4.9 stochastic). A warm cache builds in
#: 2–8 s, so after a machine's first run these err towards stepping.
PAYS_AFTER = {(False, True): 4_000, (True, True): 3_500, (False, False): 7_000, (True, False): 6_000}


@functools.cache
def compiler_available(device_type: str) -> bool:
    """Whether torch.compile finds its backend's compiler here (a C++ compiler on CPU, Triton on
    CUDA); warns once, in one line, when it does not."""
    try:
        if device_type == "cuda":
            from torch.utils._triton import has_triton

            found = has_triton()
        else:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
            found = True
    except Exception:  # inductor's search raises its own errors; any of them means no compiler
        found = False
    if not found:
        warnings.warn(f"sim.integrator=auto: torch.compile finds no compiler for {device_type} here "
                      "(a C++ compiler such as g++, or Triton on CUDA); running the step path", RuntimeWarning,
                      stacklevel=2)
    return found


def _draws_ahead(quant: Quantizer) -> bool:
    """Whether a kernel can draw stochastic rounding of u and θ as the step path does (qW and FP32 draw none)."""
    return not isinstance(quant, FixedPointQuantizer) or not quant.quantizes_neurons or quant.draws_ahead


def choose_integrator(requested: Integrator, applies: bool, quant: Quantizer, images: int | None, training: bool,
                      device: torch.device) -> Integrator:
    """The integrator a pass of ``images`` images runs with (None: not known yet, as for a
    simulator used image by image).

    ``requested`` other than auto stands; auto picks ``compiled`` when the kernel ``applies``
    (tinySNN's network), draws stochastic rounding as the step path does, the pass is long enough
    (``PAYS_AFTER``) and a compiler is found; else ``step``.
    """
    if requested is not Integrator.auto:
        return requested
    if pays_to_compile(applies, quant.quantizes_neurons, _draws_ahead(quant), images, training, device.type):
        return Integrator.compiled
    return Integrator.step


def pays_to_compile(applies: bool, neurons: bool, draws_ahead: bool, images: int | None, training: bool,
                    device_type: str) -> bool:
    """auto's rule on plain facts: the kernel applies, draws as the step path does, the pass of
    ``images`` is long enough for it (``PAYS_AFTER``, keyed by fixed-point ``neurons``) and a
    compiler is found."""
    pays = images is not None and images >= PAYS_AFTER[(neurons, training)]
    return applies and pays and draws_ahead and compiler_available(device_type)
