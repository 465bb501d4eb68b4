"""Fixed-point formats and rounding: grid, range, error bounds, idempotence, monotonicity, bias."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn.quant import FixedPoint, FormatError, Rounding, quantize

formats = st.builds(
    lambda total, frac_share, signed: FixedPoint(total, min(frac_share, total - (1 if signed else 0)), signed),
    st.integers(2, 16), st.integers(0, 16), st.booleans(),
)
values = st.lists(st.floats(-300, 300, allow_nan=False, width=32), min_size=1, max_size=64)
roundings = st.sampled_from(list(Rounding))


def q(x, fmt, rounding, seed=0):
    return quantize(torch.tensor(x, dtype=torch.float32), fmt, rounding, torch.Generator().manual_seed(seed))


@settings(max_examples=200, deadline=None)
@given(formats, values, roundings)
def test_outputs_lie_on_the_grid_and_inside_the_range(fmt, x, rounding):
    out = q(x, fmt, rounding)
    codes = out / fmt.step
    assert torch.equal(codes, codes.round())
    assert out.min() >= fmt.min_value and out.max() <= fmt.max_value


@settings(max_examples=200, deadline=None)
@given(formats, values, roundings)
def test_error_bounds_inside_the_range(fmt, x, rounding):
    t = torch.tensor(x, dtype=torch.float32)
    inside = (t >= fmt.min_value) & (t <= fmt.max_value)
    err = (q(x, fmt, rounding) - t)[inside]
    eps = fmt.step
    if rounding is Rounding.truncate:
        assert torch.all((err <= 0) & (err > -eps * (1 + 1e-6)))
    elif rounding is Rounding.nearest:
        assert torch.all(err.abs() <= eps / 2 * (1 + 1e-6))
    else:
        assert torch.all(err.abs() < eps * (1 + 1e-6))


@settings(max_examples=200, deadline=None)
@given(formats, values, roundings)
def test_idempotent(fmt, x, rounding):
    once = q(x, fmt, rounding)
    assert torch.equal(quantize(once, fmt, rounding, torch.Generator().manual_seed(1)), once)


@settings(max_examples=200, deadline=None)
@given(formats, values, st.sampled_from([Rounding.truncate, Rounding.nearest]))
def test_deterministic_modes_are_monotonic(fmt, x, rounding):
    t = torch.tensor(sorted(x), dtype=torch.float32)
    out = quantize(t, fmt, rounding)
    assert torch.all(out[1:] >= out[:-1])


def test_saturation_instead_of_wrap():
    fmt = FixedPoint(8, 4, signed=True)  # Q3.4: [−8, 7.9375]
    out = q([100.0, -100.0, 7.99], fmt, Rounding.nearest)
    assert out.tolist() == [7.9375, -8.0, 7.9375]
    assert FixedPoint(8, 8, signed=False).max_value == 255 / 256


def test_nearest_ties_go_up():
    fmt = FixedPoint(8, 0, signed=True)
    assert q([0.5, 1.5, -0.5, -1.5], fmt, Rounding.nearest).tolist() == [1.0, 2.0, 0.0, -1.0]


def test_truncation_goes_toward_minus_infinity():
    fmt = FixedPoint(8, 1, signed=True)
    assert q([0.7, -0.7], fmt, Rounding.truncate).tolist() == [0.5, -1.0]


def test_stochastic_rounding_is_unbiased():
    fmt = FixedPoint(8, 2, signed=False)  # ε = 0.25
    x = torch.full((200_000,), 0.3)
    out = quantize(x, fmt, Rounding.stochastic, torch.Generator().manual_seed(3))
    assert set(out.unique().tolist()) == {0.25, 0.5}
    # P(up) = 0.2: the mean has standard error 0.25·sqrt(0.16/2e5) ≈ 2.2e-4; allow 5σ
    assert abs(out.mean().item() - 0.3) < 1.2e-3


def test_stochastic_rounding_lets_sub_lsb_updates_survive_in_expectation():
    fmt = FixedPoint(8, 7, signed=False)
    w = torch.full((100_000,), 0.5)
    updated = quantize(w + 1e-3, fmt, Rounding.stochastic, torch.Generator().manual_seed(0))
    assert quantize(w + 1e-3, fmt, Rounding.nearest).eq(0.5).all()  # nearest loses the update
    assert abs((updated - w).mean().item() - 1e-3) < 2e-4


def test_stochastic_needs_a_generator():
    with pytest.raises(ValueError, match="Generator"):
        quantize(torch.ones(2), FixedPoint(8, 4, True), Rounding.stochastic)


def test_wide_format_behaves_like_fp32():
    fmt = FixedPoint(32, 24, signed=True)
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 20
    for rounding in Rounding:
        out = quantize(x, fmt, rounding, torch.Generator().manual_seed(1))
        assert torch.allclose(out, x, atol=2 * fmt.step, rtol=1e-6)


@pytest.mark.parametrize("total,frac,signed,message", [
    (0, 0, False, "at least 1 bit"),
    (8, 9, False, "fractional bits do not fit"),
    (8, 8, True, "fractional bits do not fit"),
    (8, -40, True, "frac_bits"),
    (40, 8, True, "at most 32"),
])
def test_invalid_formats_raise_clear_errors(total, frac, signed, message):
    with pytest.raises(FormatError, match=message):
        FixedPoint(total, frac, signed)


def test_range_analysis_picks_integer_bits():
    assert FixedPoint.for_range(0.99, 8, signed=False).name == "UQ0.8"
    assert FixedPoint.for_range(1.0, 8, signed=False).name == "UQ1.7"
    assert FixedPoint.for_range(13.0, 16, signed=True).name == "Q4.11"
    assert FixedPoint.for_range(120.0, 8, signed=True).name == "Q7.0"
    coarse = FixedPoint.for_range(300.0, 8, signed=True)  # needs 9 integer bits: step 2
    assert coarse.name == "Q9.-2" and coarse.step == 4.0 and coarse.max_value == 508.0


def test_codes_round_trip_in_smallest_dtype():
    fmt = FixedPoint(8, 4, signed=True)
    x = q([1.25, -3.5, 7.9], fmt, Rounding.nearest)
    codes = fmt.codes(x)
    assert fmt.storage_dtype() == torch.int8 and FixedPoint(12, 4, True).storage_dtype() == torch.int16
    assert FixedPoint(8, 8, False).storage_dtype() == torch.uint8
    assert torch.equal(fmt.values(codes), x)
    assert math.isclose(fmt.step, 1 / 16)


@pytest.mark.parametrize("bits", range(2, 25))
@pytest.mark.parametrize("signed", [False, True])
def test_every_accepted_width_rounds_saturates_and_codes_exactly(bits, signed):
    """Widths up to 24 bits (float32 weights carry 24 significant bits): on-grid values stay put in
    every mode, half-steps go up under nearest, values past the range saturate to its ends, and
    the integer codes are the values' exact multiples of ε."""
    fmt = FixedPoint.for_range(0.99, bits, signed)
    top = fmt.max_code
    chosen = {fmt.min_code, fmt.min_code + 1, -1 if signed else 0, 0, 1, 2, 3, top // 2, top // 2 + 1, top - 2,
              top - 1, top}
    codes = torch.tensor(sorted(c for c in chosen if fmt.min_code <= c <= top), dtype=torch.float64)
    on_grid = (codes * fmt.step).float()
    assert torch.equal(on_grid.double() / fmt.step, codes)  # representable in float32
    for rounding in Rounding:
        assert torch.equal(q(on_grid.tolist(), fmt, rounding), on_grid), rounding
    half_up = ((codes[:-1] + 0.5) * fmt.step).float()
    if bits < 24:  # at 24 bits code + ½ needs 25 significant bits: it is not a float32
        assert torch.equal(quantize(half_up, fmt, Rounding.nearest), ((codes[:-1] + 1) * fmt.step).float())
        assert torch.equal(quantize(half_up, fmt, Rounding.truncate), on_grid[:-1])
    beyond = torch.tensor([fmt.max_value * 4 + 1, fmt.min_value * 4 - 1], dtype=torch.float32)
    for rounding in Rounding:
        ends = q(beyond.tolist(), fmt, rounding)
        assert ends.tolist() == [fmt.max_value, fmt.min_value], rounding
    exported = fmt.codes(on_grid.double())
    assert exported.dtype == torch.int64 and torch.equal(exported, codes.long())
    assert torch.equal(exported.to(fmt.storage_dtype()).long(), codes.long())


def test_widths_above_24_bits_are_refused_by_the_config():
    from tinysnn.config import ConfigError, QuantConfig, Scheme

    with pytest.raises(ConfigError, match="24"):
        QuantConfig(scheme=Scheme.ptq, bits=32, reference="ref").check()
    with pytest.raises(ConfigError, match="24"):
        QuantConfig(scheme=Scheme.itq, grid_bits=[8, 32], reference="ref").check()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stochastic_rounding_is_unbiased_and_keeps_grid_values(dtype):
    """E[SR(x)] = x at 16 bits within a few standard errors over 4M draws, and no on-grid value moves."""
    fmt = FixedPoint.for_range(0.99, 16, False)  # UQ0.16, weight-like
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(4_000_000, generator=g, dtype=torch.float64) * 0.99).to(dtype)
    error = (quantize(x, fmt, Rounding.stochastic, g).double() - x.double()) / fmt.step
    # each error is U-like in (−1, 1) with variance ≤ 1/4
    standard_error = float(error.std()) / math.sqrt(error.numel())
    assert abs(float(error.mean())) < 4 * standard_error
    grid = (torch.randint(0, fmt.max_code + 1, (1_000_000,), generator=g).double() * fmt.step).to(dtype)
    assert torch.equal(quantize(grid, fmt, Rounding.stochastic, g), grid)
