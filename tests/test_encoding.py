import torch

from tinysnn.encoding import merge_events, poisson_events, spike_probability


def test_probability_is_rate_times_dt():
    images = torch.tensor([[0, 255, 51]], dtype=torch.uint8)
    p = spike_probability(images, 63.75, dt_ms=1.0)
    assert torch.allclose(p, torch.tensor([[0.0, 0.06375, 0.01275]]))


def test_poisson_rate_statistics_and_dark_pixels():
    images = torch.tensor([[0, 255, 128, 64]], dtype=torch.uint8)
    p = spike_probability(images, 100.0, dt_ms=1.0)
    g = torch.Generator().manual_seed(0)
    steps = 20000
    events = poisson_events(p, steps, g)
    dense = events.to_dense(4)[:, 0]
    assert dense[:, 0].sum() == 0  # a black pixel never fires
    rates = dense.float().mean(0)
    expected = p[0]
    # binomial standard error sqrt(p(1-p)/T) ≤ 0.0022; allow 4σ
    assert torch.all((rates - expected).abs() <= 4 * (expected * (1 - expected) / steps).sqrt() + 1e-12)


def test_events_sorted_by_time_and_reproducible():
    p = torch.full((3, 5), 0.2)
    a = poisson_events(p, 50, torch.Generator().manual_seed(7))
    b = poisson_events(p, 50, torch.Generator().manual_seed(7))
    assert torch.equal(a.time, b.time) and torch.equal(a.row, b.row)
    assert torch.all(a.time[1:] >= a.time[:-1])
    assert torch.equal(a.stream, a.row // 5)
    assert sum(a.counts_per_step()) == a.time.numel()


def test_merge_keeps_each_stream_and_sorts_by_time():
    p = torch.full((1, 4), 0.3)
    parts = [poisson_events(p, 30, torch.Generator().manual_seed(s)) for s in (1, 2)]
    merged = merge_events(parts, [0, 2], streams=3, n_inputs=4, steps=30, device=torch.device("cpu"))
    dense = merged.to_dense(4)
    assert torch.equal(dense[:, 0], parts[0].to_dense(4)[:, 0])
    assert torch.equal(dense[:, 2], parts[1].to_dense(4)[:, 0])
    assert not dense[:, 1].any()
    assert torch.all(merged.time[1:] >= merged.time[:-1])
