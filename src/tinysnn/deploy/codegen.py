"""C99 source generation: ``model.h`` (sizes, formats, constants) and ``model.c`` (tables), beside the
runtime sources shipped in ``tinysnn/deploy/c``.

Weight codes c_w (w = c_w·ε_w) are stored as tinysnn.deploy.weights lays them out (packed dense rows,
sparse rows when pruned). qWN constants are integers (thresholds as membrane codes rounded up:
u·2^(m−n_V) ≥ V_th ⟺ u ≥ ⌈V_th / 2^(m−n_V)⌉ on the finer grid m = max(n_V, n_T); the leak as
a = 2^f − A with α_q = A·2^−f); a qWN model whose bounds allow it keeps its membrane in 16-bit lanes
(``NarrowState``: the constants and the proof). qW keeps the simulator's float32 state, with its threshold
and α as exact float32 (hex) literals. The neuron arrays are padded to whole rows of vectors
(``TINYSNN_NP``): padding neurons get a threshold no state reaches.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..device_encoding import LN2_Q, LOG_INDEX_BITS, interval_tables, log_table
from ..results import RecordError
from .model import DeployModel
from .weights import WeightTable, padded_words

#: runtime sources copied into every generated folder (package data)
RUNTIME_FILES = ("tinysnn.h", "tinysnn.c", "main.c", "Makefile", "m7/startup.c", "m7/mps2_an500.ld")
N_CLASSES = 10
#: padding neurons' thresholds, which no state reaches (they get no input, so their u stays ≤ 0)
NEVER = {"int16_t": 2**15 - 1, "int32_t": 2**31 - 1, "int64_t": 2**63 - 1, "float": float(np.finfo(np.float32).max)}
#: fewest rows a step may add for the 16-bit membrane to be worth it (more take the slower spilling path)
MIN_NARROW_ROWS = 64


def reciprocals(intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's ⌊L / D⌋ as (L·M) >> k, a multiply instead of a division (tens of cycles, not pipelined on
    many cores): with ℓ = ⌈log2 D⌉, k = 30 + ℓ and M = ⌊2^k / D⌋ + 1 < 2^32, M·D = 2^k + e with 0 < e ≤ D, so
    L·M / 2^k exceeds L / D by less than 1/D for every L < 2^30, which keeps the floor (division by invariant
    integers, Granlund & Montgomery 1994). L(x) ≤ 32·ln 2·2^24 + the log table's largest entry < 2^30."""
    assert 32 * LN2_Q + int(log_table().max()) < 2**30
    d = intervals.astype(object)  # Python integers: 2^k needs up to 62 bits
    shift = np.vectorize(lambda x: 30 + (x - 1).bit_length() if x else 0)(d)
    multiplier = np.vectorize(lambda x, k: (1 << k) // x + 1 if x else 0)(d, shift)  # D = 0: a dark pixel, unused
    return multiplier.astype(np.uint32), shift.astype(np.uint8)


def _float_literal(value: float) -> str:
    """An exact C99 hex literal of a float32 value."""
    return f"{float(np.float32(value)).hex()}f"


def _initializer(values: np.ndarray, per_line: int, fmt: str) -> str:
    """A (nested, for 2-D) brace initializer of ``values``."""
    if values.ndim > 1:
        return "{\n" + ",\n".join(_initializer(row, per_line, fmt) for row in values) + "\n}"
    flat = [fmt.format(v) for v in values.tolist()]
    return "{\n    " + ",\n    ".join(", ".join(flat[k:k + per_line]) for k in range(0, len(flat), per_line)) + "\n}"


def _array(ctype: str, name: str, values: np.ndarray, per_line: int = 16, fmt: str = "{}") -> str:
    values = np.asarray(values)
    dims = "".join(f"[{d}]" for d in values.shape)
    return f"const {ctype} {name}{dims} = {_initializer(values, per_line, fmt)};\n"


@dataclass(frozen=True)
class NarrowState:
    """qWN in 16-bit lanes (tinysnn.c's ``integrate_narrow``): with P = n_w − n_V > 0,

        ⌊r / 2^s⌋ = ⌊(Σc_w + g(c)) / 2^P⌋,  g(c) = ⌊(o − L·c) / 2^(s−P)⌋,  L = a·2^(s−f)

    (Σc_w·2^(s−P) is a multiple of 2^(s−P): the floors nest). g(c) = (o' − L'·c) >> ``g_shift`` with L', o'
    = L, o divided by 2^e, e = min(s − P, trailing zeros of L), plus a bias B (a multiple of 2^P) that keeps
    every shifted number non-negative: ``g_offset`` = o' + B·2^g_shift, and B / 2^P (``g_bias``) is taken off
    with the inhibition. ``build`` returns None unless every intermediate fits 16 bits for every stored
    u ∈ [u_min, u_max] and up to ``limit`` rows of codes in a step."""

    g_offset: int
    g_leak: int
    g_shift: int
    sum_shift: int
    g_bias: int
    inh_cap: int  # inhibition beyond it saturates to u_min all the same
    limit: int  # rows per step (TINYSNN_SYN_LIMIT)

    @classmethod
    def build(cls, leak: int, offset: int, s: int, weight_shift: int, u_min: int, u_max: int, max_code: int,
              reset: int, thresholds: np.ndarray) -> "NarrowState | None":
        p = s - weight_shift
        if not 0 < p < 16 or leak < 0 or not u_min <= reset <= u_max or max_code < 1:
            return None
        e = min(weight_shift, (leak & -leak).bit_length() - 1) if leak else weight_shift
        g_leak, g_shift, o = leak >> e, weight_shift - e, offset >> e
        g_low, g_high = (o - g_leak * u_max) >> g_shift, (o - g_leak * u_min) >> g_shift
        bias = -(-max(0, -g_low) // 2**p) * 2**p
        g_offset = o + bias * 2**g_shift
        g_max = g_high + bias  # g + B ∈ [0, g_max]
        limit = (0xFFFF - g_max) // max_code  # Σc_w + g + B < 2^16
        d_max = (limit * max_code + g_max) >> p  # ⌊(Σc_w + g + B) / 2^P⌋ ∈ [0, d_max]
        inh_cap = u_max + d_max - bias // 2**p - u_min
        fits = (g_offset - g_leak * u_max >= 0 and g_offset - g_leak * u_min <= 0xFFFF  # (uint16_t) exact
                and limit >= MIN_NARROW_ROWS
                and u_max + d_max < 2**15 - 1  # new c, below the padding neurons' threshold
                and inh_cap + bias // 2**p < 2**15 and u_min - inh_cap - bias // 2**p >= -(2**15)
                and thresholds.min() >= -(2**15) and thresholds.max() < 2**15)
        return cls(g_offset, g_leak, g_shift, p, bias // 2**p, inh_cap, limit) if fits else None

    def defines(self) -> list[str]:
        return ["#define TINYSNN_NARROW_STATE 1 /* u in 16-bit lanes (codegen.NarrowState) */",
                f"#define TINYSNN_G_OFFSET {self.g_offset}", f"#define TINYSNN_G_LEAK {self.g_leak}",
                f"#define TINYSNN_G_SHIFT {self.g_shift}", f"#define TINYSNN_SUM_SHIFT {self.sum_shift} /* P */",
                f"#define TINYSNN_G_BIAS {self.g_bias}", f"#define TINYSNN_INH_CAP {self.inh_cap}"]


def _integer_defines(model: DeployModel, narrow_sums: bool) -> tuple[list[str], str, np.ndarray, int | None]:
    """qWN: the step's shifts and constants (tinysnn.quant.integer), the threshold type and codes, and the rows
    per step the 16-bit membrane allows (None: it keeps the accumulator's width; it needs ``narrow_sums``, the
    step's weight sums in uint16)."""
    export, spec = model.export, model.spec
    membrane, threshold, weight = spec.membrane_format, spec.threshold_format, spec.weight_format
    assert membrane is not None and threshold is not None
    f = int(export["decay_frac_bits"])
    s = max(f, weight.frac_bits - membrane.frac_bits)
    finest = max(membrane.frac_bits, threshold.frac_bits)
    v_th = model.v_th_codes.numpy() * 2 ** (finest - threshold.frac_bits)
    # c·2^(m−n_V) ≥ V_th (grid 2^−m) ⟺ c ≥ ⌈V_th / 2^(m−n_V)⌉: thresholds in membrane codes
    v_th = -(-v_th // 2 ** (finest - membrane.frac_bits))
    decay = int(export["decay"])
    # |r| bound: a·|c|·2^(s−f) + (every input at once)·max code·2^(s−n_w+n_V) + rounding offset
    bound = ((2**f - decay) * 2 ** (membrane.total_bits - 1) * 2 ** (s - f)
             + model.codes.shape[0] * weight.max_code * 2 ** (s - weight.frac_bits + membrane.frac_bits) + 2**s)
    wide = bound >= 2**30
    acc, uacc, bias = ("int64_t", "uint64_t", 62) if wide else ("int32_t", "uint32_t", 30)
    rounding = export["rounding"]
    offset = 2 ** (s - 1) if rounding == "nearest" else 0
    reset = int(export["reset"])
    weight_shift = s - weight.frac_bits + membrane.frac_bits
    narrow = NarrowState.build((2**f - decay) * 2 ** (s - f), offset, s, weight_shift, membrane.min_code,
                               membrane.max_code, weight.max_code, reset, v_th) if narrow_sums else None
    state = "int16_t" if narrow else acc
    lines = [
        "#define TINYSNN_FLOAT_STATE 0",
        f"typedef {state} tinysnn_state; /* u code, {membrane.name} "
        f"({'16-bit lanes' if narrow else 'the accumulator width: fewer conversions'}) */",
        f"typedef {acc} tinysnn_acc;",
        f"typedef {uacc} tinysnn_uacc;",
        f"#define TINYSNN_LEAK ((tinysnn_acc){2**f - decay}) /* a = 2^f - A, alpha_q = A / 2^{f} */",
        f"#define TINYSNN_SHIFT {s} /* s = max(f, n_w - n_V) */",
        f"#define TINYSNN_DECAY_SHIFT {s - f}",
        f"#define TINYSNN_WEIGHT_SHIFT {weight_shift}",
        f"#define TINYSNN_ROUND_OFFSET ((tinysnn_acc){offset}) /* {rounding} */",
        f"#define TINYSNN_BIAS ((tinysnn_acc)1 << {bias})",
        f"#define TINYSNN_INH ((tinysnn_acc){int(export['inhibition'])}) /* w_inh code */",
        f"#define TINYSNN_RESET {reset}",
        f"#define TINYSNN_U_MIN ((tinysnn_acc){membrane.min_code})",
        f"#define TINYSNN_U_MAX ((tinysnn_acc){membrane.max_code})",
        # a code above u's maximum reaches every threshold, fires and resets: no upper clamp needed then
        f"#define TINYSNN_CLAMP_HIGH {int(v_th.max() > membrane.max_code)}",
        f"#define TINYSNN_REFRAC {int(export['refrac_steps'])}",
        f"#define TINYSNN_DELAY {int(export['lateral_delay_steps'])}",
        *(narrow.defines() if narrow else ["#define TINYSNN_NARROW_STATE 0"]),
    ]
    return lines, state, v_th, narrow.limit if narrow else None


def _float_defines(model: DeployModel) -> tuple[list[str], str, np.ndarray, None]:
    """qW: float32 state as the simulator keeps it; thresholds u_th + θ in float32."""
    network = model.network
    threshold = (model.theta.float() + network.exc.thresh).numpy()  # the simulator's V_th, float32
    lines = [
        "#define TINYSNN_FLOAT_STATE 1",
        "typedef float tinysnn_state; /* u (mV), float32 as in the simulator */",
        *([] if model.fp32 else [f"#define TINYSNN_W_STEP {_float_literal(model.weight_format.step)} /* epsilon_w */"]),
        f"#define TINYSNN_W_INH {_float_literal(network.w_inh)} /* w_inh (mV) */",
        f"#define TINYSNN_DECAY {_float_literal(network.exc.decay)} /* alpha */",
        f"#define TINYSNN_RESET {_float_literal(network.exc.reset)}",
        f"#define TINYSNN_REFRAC {network.exc.refrac_steps}",
        f"#define TINYSNN_DELAY {network.lateral_delay_steps}",
        "#define TINYSNN_NARROW_STATE 0",
    ]
    return lines, "float", threshold, None


def _fp32_weight_lines(weights: np.ndarray) -> tuple[list[str], list[str], list[str]]:
    """FP32: float rows (the shortest decimal of each float32 reads back exactly), padded with zeros."""
    weights = np.pad(weights, ((0, 0), (0, padded_words(weights.shape[1], 4) - weights.shape[1])))
    defines = ["#define TINYSNN_CODES_PER_BYTE 1", f"#define TINYSNN_ROW_WORDS {weights.shape[1]}",
               "typedef float tinysnn_weight;", "#define TINYSNN_SPARSE 0"]
    literals = np.asarray([f"{np.float32(w)}f" for w in weights.reshape(-1).tolist()])
    return (defines, [f"extern const tinysnn_weight tinysnn_weights[{weights.size}];"],
            [_array("tinysnn_weight", "tinysnn_weights", literals, per_line=10)])


def _weight_lines(table: WeightTable, n_inputs: int) -> tuple[list[str], list[str], list[str]]:
    """Defines, declarations and definitions of the weight table."""
    packing = table.packing
    defines = [f"#define TINYSNN_CODES_PER_BYTE {packing.per_word}",
               f"#define TINYSNN_ROW_WORDS {table.dense.shape[1]}",
               f"typedef {packing.ctype} tinysnn_weight;",
               f"#define TINYSNN_SPARSE {int(table.pruned)}"]
    # every row sparse: one row of zeros all the same (the runtime's loops read whole rows; none reads it)
    dense = table.dense if table.dense.size else np.zeros((1, table.dense.shape[1]), dtype=np.uint32)
    declarations = [f"extern const tinysnn_weight tinysnn_weights[{dense.size}];"]
    definitions = [_array("tinysnn_weight", "tinysnn_weights", dense.reshape(-1))]
    if table.pruned:
        assert table.dense_row is not None and table.sparse_start is not None and table.sparse is not None
        sparse = table.sparse if table.sparse.size else np.zeros(1, dtype=np.uint64)
        defines += [f"typedef {table.entry_ctype} tinysnn_entry; /* (neuron << TINYSNN_CODE_BITS) | code */",
                    f"#define TINYSNN_CODE_BITS {table.bits}"]
        declarations += [f"extern const int16_t tinysnn_dense_row[{n_inputs}];",
                         f"extern const uint32_t tinysnn_sparse_start[{n_inputs + 1}];",
                         f"extern const tinysnn_entry tinysnn_sparse[{sparse.size}];"]
        definitions += [_array("int16_t", "tinysnn_dense_row", table.dense_row, per_line=20),
                        _array("uint32_t", "tinysnn_sparse_start", table.sparse_start, per_line=12, fmt="{}u"),
                        _array("tinysnn_entry", "tinysnn_sparse", sparse, per_line=12, fmt="{}u")]
    return defines, declarations, definitions


def model_sources(model: DeployModel, prune: bool = False) -> tuple[str, str]:
    """The text of model.h and model.c (``prune``: zero-weight synapses dropped, sparse rows where smaller)."""
    sim = model.config.sim
    n_inputs, n = model.weights.shape
    if sim.steps > 65535:
        raise RecordError(f"{sim.steps} steps per presentation exceed the runtime's 16-bit step counter")
    if model.fp32:  # float rows; pruning drops neurons only
        weight_defines, weight_declarations, weight_definitions = _fp32_weight_lines(model.weights.numpy())
        narrow, padded, storage, syn_type, limit = False, padded_words(n, 4), "float32 weights", "float", 0
    else:
        bits = model.weight_format.total_bits
        table = WeightTable.build(model.codes.numpy(), bits, prune)
        weight_defines, weight_declarations, weight_definitions = _weight_lines(table, n_inputs)
        narrow = model.weight_format.max_code <= 0xFF  # uint16 sums hold ≥ 257 rows
        padded = table.dense.shape[1] * table.packing.per_word
        storage = (f"weights {model.weight_format.name}: {bits}-bit codes, {table.packing.per_word} per "
                   f"{table.packing.ctype}{'; zero-weight synapses pruned' if prune else ''}")
        syn_type, limit = "uint16_t" if narrow else "int32_t", 0xFFFF // model.weight_format.max_code
    defines, threshold_type, threshold, narrow_limit = (
        _integer_defines(model, narrow) if model.integer else _float_defines(model))
    limit = narrow_limit or limit  # the 16-bit membrane's bound is the tighter one
    threshold = np.concatenate([threshold, np.full(padded - n, NEVER[threshold_type], dtype=threshold.dtype)])
    multiplier, shift = reciprocals(interval_tables(sim))
    header = "\n".join([
        f"/* Generated by `python -m tinysnn.deploy` from {model.run_dir} (replica {model.replica}): {model.label}.",
        f" * {storage}. */",
        "#ifndef TINYSNN_MODEL_H", "#define TINYSNN_MODEL_H", "", "#include <stdint.h>", "",
        f"#define TINYSNN_I {n_inputs}", f"#define TINYSNN_N {n}",
        f"#define TINYSNN_NP {padded} /* N padded to whole rows of vectors */", f"#define TINYSNN_T {sim.steps}",
        f"#define TINYSNN_CLASSES {N_CLASSES}", f"#define TINYSNN_MIN_SPIKES {sim.min_spikes}u",
        f"#define TINYSNN_MAX_RETRIES {sim.max_retries}", f"#define TINYSNN_SEED_BASE {model.seed_base}ul",
        f"#define TINYSNN_LOG_INDEX_BITS {LOG_INDEX_BITS}", f"#define TINYSNN_LN2_Q {LN2_Q}u",
        *weight_defines, f"#define TINYSNN_FLOAT_WEIGHTS {int(model.fp32)}",
        f"#define TINYSNN_NARROW_SYN {int(narrow)} /* per-step weight sums in uint16, spilled beyond "
        f"TINYSNN_SYN_LIMIT rows */",
        f"#define TINYSNN_SYN_LIMIT {limit}u",
        f"typedef {syn_type} tinysnn_syn;", *defines, "",
        *weight_declarations,
        f"extern const {threshold_type} tinysnn_threshold[{padded}];",
        f"extern const int8_t tinysnn_assignments[{n}];",
        f"extern const uint32_t tinysnn_interval_m[{multiplier.shape[0]}][{multiplier.shape[1]}];",
        f"extern const uint8_t tinysnn_interval_k[{shift.shape[0]}][{shift.shape[1]}];",
        f"extern const uint32_t tinysnn_log_table[{1 << LOG_INDEX_BITS}];", "", "#endif", ""])
    threshold_values = threshold if model.integer else np.asarray([_float_literal(v) for v in threshold])
    source = "\n".join([
        "/* Generated by `python -m tinysnn.deploy`: weights, thresholds, assignments, encoder tables. */",
        '#include "model.h"', "",
        *weight_definitions,
        _array(threshold_type, "tinysnn_threshold", threshold_values, per_line=8),
        _array("int8_t", "tinysnn_assignments", model.assignments.numpy(), per_line=20),
        _array("uint32_t", "tinysnn_interval_m", multiplier, per_line=8, fmt="{}u"),
        _array("uint8_t", "tinysnn_interval_k", shift, per_line=16),
        _array("uint32_t", "tinysnn_log_table", log_table(), per_line=8, fmt="{}u"),
    ])
    return header, source


def write_sources(model: DeployModel, out: str | Path, prune: bool = False) -> Path:
    """Write the self-contained C folder ``out`` (replaced as a whole: never half-written)."""
    out = Path(out)
    header, source = model_sources(model, prune)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        runtime = resources.files("tinysnn.deploy") / "c"
        for name in RUNTIME_FILES:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((runtime / name).read_bytes())
        (staging / "model.h").write_text(header)
        (staging / "model.c").write_text(source)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
