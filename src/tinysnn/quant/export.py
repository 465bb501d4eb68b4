"""Export of a quantized model as integer codes plus their fixed-point formats.

``export.pt`` (a plain dict, loadable with ``torch.load(..., weights_only=True)``) holds

* ``weights``: codes [R, I, N] in the smallest integer dtype, ``weight_format`` (Qm.n fields);
* qWN: ``v_th`` codes [R, N] in ``threshold_format``, ``membrane_format`` and the device constants
  that act on u as codes on its grid (``reset``, ``inhibition``), the decay α as an integer A with
  α_q = A / 2^decay_frac_bits, the refractory period and inhibition delay in steps; qW: ``theta``
  in FP32;
* ``assignments`` [R, N] (class per neuron, −1 unassigned), the rounding mode, the topology and
  the presentation length in steps.

Values are code · 2^−frac_bits; ``tinysnn.quant.integer`` evaluates qWN exports in integers only.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..network import NetworkConstants, NetworkParams
from ..results import atomic_write
from .formats import FixedPoint
from .quantizer import FixedPointQuantizer
from .spec import QuantSpec

EXPORT_VERSION = 2


def _codes(values: torch.Tensor, fmt: FixedPoint) -> torch.Tensor:
    return fmt.codes(values.detach().cpu().double()).to(fmt.storage_dtype())


def export_model(path: str | Path, params: NetworkParams, spec: QuantSpec, network: NetworkConstants, steps: int,
                 assignments: torch.Tensor) -> Path:
    """Write the quantized parameters of ``params`` (replicas of one spec) as integer codes (atomically)."""
    payload: dict[str, Any] = {
        "format_version": EXPORT_VERSION,
        "topology": network.topology.value,
        "rounding": spec.rounding.value,
        "steps": steps,
        "weights": _codes(params.weights, spec.weight_format),
        "weight_format": asdict(spec.weight_format),
        "assignments": assignments.detach().cpu(),
    }
    if spec.membrane_format is None or spec.threshold_format is None:
        payload["theta"] = params.theta.detach().cpu()
    else:
        membrane, device = spec.membrane_format, spec.device_constants(network)
        # thresholds as the device holds them (saturated to the format); no rounding draws
        threshold = FixedPointQuantizer([spec], [torch.Generator()]).threshold(params.theta, device)
        payload.update({
            "membrane_format": asdict(membrane),
            "threshold_format": asdict(spec.threshold_format),
            "v_th": _codes(threshold, spec.threshold_format),
            "reset": int(round(device.exc.reset / membrane.step)),
            "inhibition": int(round(float(device.w_inh) / membrane.step)),
            "lateral_delay_steps": network.lateral_delay_steps,
            "refrac_steps": device.exc.refrac_steps,
            "decay": int(round(device.exc.decay * 2**spec.decay_frac_bits)),
            "decay_frac_bits": spec.decay_frac_bits,
        })
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_export(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export {path} does not exist; a quantized run with quant.export=true writes it")
    payload = torch.load(path, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format_version") != EXPORT_VERSION:
        raise ValueError(f"{path} is not a tinysnn export of format version {EXPORT_VERSION}")
    return payload
