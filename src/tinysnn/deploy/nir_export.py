"""Export of a deployed network to NIR (the Neuromorphic Intermediate Representation, package ``nir``).

The graph: ``input`` (784 pixels' spikes) → ``x_to_e`` (nir.Linear, W [N, 784] = the weights'
values c_w·ε_w) → ``exc`` (nir.LIF) → ``output``, and the lateral inhibition ``exc`` →
``inhibition_delay`` (nir.Delay, delay·dt) → ``lateral`` (nir.Linear, −w_inh off the diagonal)
→ ``exc``. NIR's LIF is continuous, τ·dv/dt = (v_leak − v) + R·I; with v = u = V − V_rest (mV),
τ = τ_m, v_leak = 0, R = τ_m (an input spike of weight w then raises v by w mV, as the
simulator's current-based step does), v_threshold = u_th + θ per neuron, v_reset = u_reset.

What NIR cannot express, kept in the graph's metadata instead: the Poisson rate coding of pixels
(and the device encoder), the refractory period, the discrete time step and the rounding of a
fixed-point membrane (qWN formats), the retry rule and the label assignments of the readout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..results import RecordError, atomic_write
from .model import DeployModel


def _nir() -> Any:
    try:
        import nir
    except ImportError:
        raise RecordError("NIR export needs the nir package: pip install -e '.[deploy]'") from None
    return nir


def nir_graph(model: DeployModel) -> Any:
    """The deployed network as a ``nir.NIRGraph`` (SI units: seconds; potentials in mV)."""
    nir = _nir()
    network, sim = model.network, model.config.sim
    n_inputs, n = model.weights.shape
    tau = np.full(n, model.config.model.exc.tau_mem_ms / 1000.0)
    threshold = (model.theta.double() + network.exc.thresh).numpy()
    lateral = -network.w_inh * (np.ones((n, n)) - np.eye(n))
    metadata = {
        "source": str(model.run_dir), "model": model.label, "dt_s": sim.dt_ms / 1000.0,
        "presentation_steps": sim.steps, "refractory_steps": network.exc.refrac_steps,
        "encoding": "Poisson rate coding, rate = pixel/255 · max_rate_hz per step of dt (tinysnn.device_encoding)",
        "max_rate_hz": sim.max_rate_hz, "retry": f"fewer than {sim.min_spikes} spikes: +{sim.retry_rate_step_hz} Hz, "
                                                 f"at most {sim.max_retries} times",
        "assignments": model.assignments.numpy().tolist(),
        "weight_format": None if model.fp32 else model.weight_format.name,
        "membrane_format": model.spec.membrane_format.name if model.integer and model.spec.membrane_format else None,
    }
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_inputs])}),
        "x_to_e": nir.Linear(weight=model.weights.double().numpy().T.copy()),
        "exc": nir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n), v_threshold=threshold,
                       v_reset=np.full(n, network.exc.reset)),
        "inhibition_delay": nir.Delay(delay=np.full(n, network.lateral_delay_steps * sim.dt_ms / 1000.0)),
        "lateral": nir.Linear(weight=lateral),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "x_to_e"), ("x_to_e", "exc"), ("exc", "output"), ("exc", "inhibition_delay"),
             ("inhibition_delay", "lateral"), ("lateral", "exc")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(model: DeployModel, path: Path) -> Path:
    """Write the graph to ``path`` (HDF5, atomically)."""
    nir = _nir()
    graph = nir_graph(model)
    return atomic_write(path, lambda tmp: nir.write(tmp, graph))
