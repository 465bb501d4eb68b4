"""The C Bernoulli draws (tinysnn.native.mt19937) list exactly the spikes torch.rand's comparison lists,
and leave every generator where torch.rand leaves it; encoding gives the same events either way."""

import contextlib

import pytest
import torch

from tinysnn.encoding import poisson_events, spike_probability, stream_events
from tinysnn.native import build, mt19937

needs_compiler = pytest.mark.skipif(build.compiler() is None, reason="needs a C compiler")


def torch_listed(p: torch.Tensor, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    return (torch.rand(steps, p.numel(), generator=generator) < p).nonzero(as_tuple=True)


def generator_pair(seed: int, offset: int) -> tuple[torch.Generator, torch.Generator]:
    """Two generators in the same state, ``offset`` numbers into their stream (mid-block)."""
    pair = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for g in pair:
        torch.rand(offset, generator=g)
    return pair


def test_thresholds_split_the_24_bit_uniforms_exactly():
    """k · 2^−24 < p  ⇔  k < ⌈p · 2^24⌉, at the boundary of p's own grid and between its points."""
    grid = 2.0 ** -24
    p = torch.tensor([grid, 3 * grid, 3.5 * grid, 0.0637, 0.5, 1 - grid, 1.0, 1.5], dtype=torch.float32)
    threshold = mt19937.thresholds(p)
    for value, bound in zip(p.tolist(), threshold.tolist()):
        for k in range(max(0, bound - 3), min(2 ** 24, bound + 3)):
            assert (k * grid < value) == (k < bound), (value, k, bound)


@needs_compiler
def test_the_c_draws_run_where_a_compiler_is():
    assert mt19937.applies(torch.zeros(3), [torch.Generator()])
    with mt19937.switched_off():
        assert not mt19937.applies(torch.zeros(3), [torch.Generator()])


@needs_compiler
@pytest.mark.parametrize("steps, active, offset", [(1, 1, 0), (350, 150, 0), (7, 623, 5), (40, 1000, 1249),
                                                   (3, 0, 2), (2, 624, 623)])
def test_draws_equal_torchs(steps, active, offset):
    p = torch.rand(active, generator=torch.Generator().manual_seed(active)) * 0.3
    p[::7] = 1.0  # always fires
    ours, theirs = generator_pair(steps + active, offset)
    time, stream, pixel = mt19937.bernoulli_events(p, steps, [ours])
    expected = torch_listed(p, steps, theirs)
    assert torch.equal(time, expected[0]) and torch.equal(pixel, expected[1])
    assert not stream.any()
    assert torch.equal(ours.get_state(), theirs.get_state())


@needs_compiler
def test_a_full_output_continues_where_it_stopped(monkeypatch):
    """With room for little more than one 624-block per call, a dense draw takes many calls: same list."""
    monkeypatch.setattr(mt19937, "_capacity", lambda probability, steps: 626)
    p = torch.full((100,), 0.9)
    ours, theirs = generator_pair(3, 10)
    time, _, pixel = mt19937.bernoulli_events(p, 50, [ours])
    expected = torch_listed(p, 50, theirs)
    assert time.numel() > 5 * 624  # a call lists at most one block's 624 spikes: at least six calls
    assert torch.equal(time, expected[0]) and torch.equal(pixel, expected[1])
    assert torch.equal(ours.get_state(), theirs.get_state())


@needs_compiler
def test_streams_are_ordered_by_step_then_stream_then_pixel():
    p = torch.rand(30, generator=torch.Generator().manual_seed(0)) * 0.4
    ours = [torch.Generator().manual_seed(s) for s in range(5)]
    theirs = [torch.Generator().manual_seed(s) for s in range(5)]
    time, stream, pixel = mt19937.bernoulli_events(p, 60, ours)
    rows = [(t, s, i) for s, g in enumerate(theirs) for t, i in zip(*[x.tolist() for x in torch_listed(p, 60, g)])]
    assert list(zip(time.tolist(), stream.tolist(), pixel.tolist())) == sorted(rows)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(ours, theirs))


def test_a_library_that_draws_otherwise_is_not_used():
    """The probe at load rejects a library whose draws differ from torch's (here: it draws nothing)."""
    class DrawsNothing:
        @staticmethod
        def uniform_fill(state, out, n):
            return None

        @staticmethod
        def bernoulli_events(state, threshold, active, total, position, time, pixel, capacity, listed):
            return total

    assert not mt19937._reproduces_torch(DrawsNothing())


@needs_compiler
@pytest.mark.parametrize("shape, offset", [((1,), 0), ((624,), 0), ((3, 1000), 7), ((2, 5, 311), 623), ((0,), 4)])
def test_uniforms_equal_torchs(shape, offset):
    ours, theirs = generator_pair(sum(shape), offset)
    out = mt19937.rand_(torch.empty(shape), ours)
    assert torch.equal(out, torch.rand(shape, generator=theirs))
    assert torch.equal(ours.get_state(), theirs.get_state())


def test_uniforms_into_a_strided_view_take_torchs_path():
    ours, theirs = generator_pair(5, 3)
    out = torch.zeros(4, 6)
    mt19937.rand_(out[:, ::2], ours)
    expected = torch.zeros(4, 6)
    expected[:, ::2] = torch.rand(4, 3, generator=theirs)
    assert torch.equal(out, expected) and torch.equal(ours.get_state(), theirs.get_state())


def test_without_a_compiler_load_says_so_and_returns_none(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("TINYSNN_CACHE", str(tmp_path / "cache"))
    assert build.load("mt19937") is None
    assert "its torch path runs" in caplog.text


@needs_compiler
def test_the_library_is_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYSNN_CACHE", str(tmp_path))
    assert build.load("mt19937") is not None
    built = list((tmp_path / "native").glob("mt19937-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    assert build.load("mt19937") is not None and built[0].stat().st_mtime_ns == stamp


@needs_compiler
def test_encoding_gives_the_same_events_with_and_without_the_c_draws():
    """Evaluation's batches (poisson_events) and training's replicas of one image (stream_events)."""
    images = (torch.rand(3, 64, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    images[:, :10] = 0
    for batch in (images, images[:1].expand(4, -1)):
        p = spike_probability(batch, 300.0, dt_ms=0.5)
        listed = []
        for switched_off in (False, True):
            generators = [torch.Generator().manual_seed(10 + s) for s in range(batch.shape[0])]
            with mt19937.switched_off() if switched_off else contextlib.nullcontext():
                listed.append((poisson_events(p, 40, generators[0]), stream_events(p, 40, generators),
                               [g.get_state() for g in generators]))
        (ours, ours_streams, our_states), (theirs, their_streams, their_states) = listed
        assert ours.time.numel() > 100
        for a, b in ((ours, theirs), (ours_streams, their_streams)):
            assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("time", "stream", "row"))
        assert all(torch.equal(a, b) for a, b in zip(our_states, their_states))
