"""Atomic result files, checkpoints and the receptive-field grid."""

import pytest
import torch

from tinysnn.checkpoint import load_checkpoint, save_checkpoint
from tinysnn.plotting import receptive_fields_grid
from tinysnn.results import RecordError, atomic_write, read_json, write_json


def test_json_round_trip_leaves_no_temp_files(tmp_path):
    path = write_json(tmp_path / "m.json", {"accuracy": 0.9, "per_class": [1, 2]})
    assert read_json(path) == {"accuracy": 0.9, "per_class": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_json(tmp_path / "m.json", {"v": 1})

    def broken(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", weights=torch.rand(2, 4, 3), theta=torch.rand(2, 3),
                           assignments=torch.tensor([[0, 1, -1], [2, 2, 1]]), proportions=torch.rand(2, 3, 10),
                           config={"model": {"n_neurons": 3}}, rng_states=[torch.Generator().get_state()])
    payload = load_checkpoint(path)
    assert payload["weights"].shape == (2, 4, 3) and payload["config"]["model"]["n_neurons"] == 3
    restored = torch.Generator()
    restored.set_state(payload["rng_states"][0])


def test_missing_or_foreign_checkpoint_is_named(tmp_path):
    with pytest.raises(RecordError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(RecordError, match="not a tinysnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_receptive_field_grid_places_each_neuron_in_a_tile():
    weights = torch.zeros(784, 5)
    weights[0, 3] = 1.0  # neuron 3, pixel (0, 0)
    grid = receptive_fields_grid(weights)
    assert grid.shape == (2 * 28, 3 * 28)  # 5 neurons on a 3-column grid
    assert grid[28, 0] == 1.0 and grid.sum() == 1.0
