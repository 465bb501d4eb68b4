"""The device Poisson encoder: integer-only rate coding by inter-spike intervals, as the C runtime does it.

A pixel of value p > 0 fires at each step with probability q = p/255 · r_k · dt/1000 at attempt k
(r_k = max_rate + k · retry_step, the simulator's retry rule). Instead of one Bernoulli draw per
pixel and step, each pixel draws its geometric inter-spike intervals G ≥ 1 directly,

    G = 1 + ⌊L(x) / D_k[p]⌋,   L(x) ≈ −ln(x / 2^32) · 2^24,   D_k[p] = round(−ln(1 − q) · 2^24),

so the first spike falls on step G₁ − 1, the next G₂ steps later, and the cost scales with the
spikes (≈ 1,600 per MNIST image), not with pixels × steps. Only integers are involved:

* x: xorshift32 (x ^= x≪13; x ^= x≫17; x ^= x≪5), one stream per (image seed S, attempt k, pixel i),
  seeded with fmix32(S + 0x9E3779B9 · (k·784 + i + 1)) (MurmurHash3's finaliser; 0 becomes 1);
* L(x) = z · round(ln 2 · 2^24) + LOG_TABLE[b], z the leading zeros of x and b the 8 bits after its
  leading one, LOG_TABLE[b] = round(−ln((256 + b + ½) / 512) · 2^24);
* D_k[p]: one table per attempt, computed here and written into the C sources by ``tinysnn.deploy``.

Image n of an evaluation has seed S = base + n (mod 2^32). ``device_events`` is the vectorised
(numpy) twin of ``tinysnn_encode`` in the C runtime: both give the same spikes, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import SimConfig
from .encoding import SpikeEvents

#: fixed-point fraction bits of L(x) and D
Q_BITS = 24
#: index bits of LOG_TABLE (the bits after the leading one of x)
LOG_INDEX_BITS = 8
GOLDEN = 0x9E3779B9
MASK32 = 0xFFFFFFFF


def log_table() -> np.ndarray:
    """uint32 [256]: −ln of the midpoint of each mantissa bin of x / 2^32 in [½, 1), Q24."""
    size = 1 << LOG_INDEX_BITS
    mid = (size + np.arange(size) + 0.5) / (2 * size)
    return np.round(-np.log(mid) * 2**Q_BITS).astype(np.uint32)


LN2_Q = round(math.log(2.0) * 2**Q_BITS)


def attempt_rates(sim: SimConfig) -> list[float]:
    """The max rate of each attempt, as ``present_with_retries`` adds them up (Hz)."""
    rates = [sim.max_rate_hz]
    for _ in range(sim.max_retries):
        rates.append(rates[-1] + sim.retry_rate_step_hz)
    return rates


def interval_tables(sim: SimConfig) -> np.ndarray:
    """uint32 [attempts, 256]: D_k[p] = round(−ln(1 − q) · 2^24), q = p/255 · r_k · dt/1000 (D_k[0] = 0)."""
    rows = []
    for rate in attempt_rates(sim):
        q = np.arange(256, dtype=np.float64) / 255.0 * rate * sim.dt_ms / 1000.0
        with np.errstate(divide="ignore"):
            d = -np.log1p(-q) * 2**Q_BITS
        rows.append(np.minimum(np.round(d), MASK32))
    return np.asarray(rows, dtype=np.uint32)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser on uint32 arrays."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def xorshift32(x: np.ndarray) -> np.ndarray:
    x = x ^ (x << np.uint32(13))
    x = x ^ (x >> np.uint32(17))
    return x ^ (x << np.uint32(5))


def neg_log_q24(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """L(x) ≈ −ln(x / 2^32) · 2^24 for uint32 x ≥ 1 (uint32)."""
    _, exponent = np.frexp(x.astype(np.float64))  # x = m·2^e, m in [½, 1): e = bit length (exact below 2^53)
    zeros = (32 - exponent).astype(np.uint64)
    top = (x.astype(np.uint64) << zeros) & np.uint64(MASK32)
    index = (top >> np.uint64(32 - 1 - LOG_INDEX_BITS)) & np.uint64((1 << LOG_INDEX_BITS) - 1)
    return (zeros.astype(np.uint32) * np.uint32(LN2_Q) + table[index]).astype(np.uint32)


@dataclass(frozen=True)
class DeviceEncoder:
    """Integer Poisson encoding for an evaluation of ``steps`` steps per presentation (image seeds base + n)."""

    intervals: np.ndarray  # uint32 [attempts, 256]
    steps: int
    base_seed: int

    @classmethod
    def build(cls, sim: SimConfig, base_seed: int) -> "DeviceEncoder":
        return cls(interval_tables(sim), sim.steps, base_seed % 2**32)

    def events(self, images: torch.Tensor, ids: torch.Tensor, attempt: int) -> SpikeEvents:
        """Input spikes [B images] of attempt ``attempt``; ``ids`` [B] are the images' indices n."""
        if attempt >= self.intervals.shape[0]:
            raise ValueError(f"attempt {attempt} exceeds the {self.intervals.shape[0]} attempts of the retry rule")
        pixels = images.detach().cpu().to(torch.int64).numpy()
        batch, n_inputs = pixels.shape
        stream, pixel = np.nonzero(pixels)
        seeds = (np.uint64(self.base_seed) + ids.cpu().numpy().astype(np.uint64)) & np.uint64(MASK32)
        counter = (np.uint64(attempt * n_inputs + 1) + pixel.astype(np.uint64)) * np.uint64(GOLDEN)
        state = fmix32(((seeds[stream] + counter) & np.uint64(MASK32)).astype(np.uint32))
        state[state == 0] = 1
        interval = self.intervals[attempt][pixels[stream, pixel]]
        table = log_table()
        times, streams, rows = [], [], []
        t = np.full(stream.shape, -1, dtype=np.int64)
        live = np.arange(stream.size)
        while live.size:
            state[live] = xorshift32(state[live])
            t[live] += 1 + neg_log_q24(state[live], table) // interval[live]
            live = live[t[live] < self.steps]
            times.append(t[live])
            streams.append(stream[live])
            rows.append(pixel[live])
        time = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
        src = np.concatenate(streams).astype(np.int64) if streams else np.zeros(0, dtype=np.int64)
        row = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
        order = np.lexsort((row, src, time))  # by time, then stream, then pixel
        time, src, row = time[order], src[order], row[order]
        device = images.device
        return SpikeEvents(time=torch.from_numpy(time).to(device), stream=torch.from_numpy(src).to(device),
                           row=torch.from_numpy(row + src * n_inputs).to(device), steps=self.steps, streams=batch)
