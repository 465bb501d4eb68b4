import torch

from tinysnn.encoding import merge_events, poisson_events, spike_probability, stream_events


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


def test_streams_of_one_image_list_what_their_merged_own_lists_give():
    """Training's encoding (every replica the same image, its own generator) and a batch of different
    images: the merge of each stream's own poisson_events, and each generator left where it would be."""
    image = (torch.rand(1, 64, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    image[0, :10] = 0  # dark pixels draw nothing
    different = (torch.rand(3, 64, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    for images in (image.expand(4, -1), different):
        p = spike_probability(images, 300.0, dt_ms=0.5)
        streams = p.shape[0]
        mine = [torch.Generator().manual_seed(10 + s) for s in range(streams)]
        theirs = [torch.Generator().manual_seed(10 + s) for s in range(streams)]
        events = stream_events(p, 40, mine)
        parts = [poisson_events(p[s:s + 1], 40, g) for s, g in enumerate(theirs)]
        expected = merge_events(parts, list(range(streams)), streams, 64, 40, torch.device("cpu"))
        assert events.time.numel() > 100
        for field in ("time", "stream", "row"):
            assert torch.equal(getattr(events, field), getattr(expected, field))
        assert (events.steps, events.streams) == (40, streams)
        assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(mine, theirs))
