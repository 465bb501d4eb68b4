"""Dataset loading from a torchvision-style ``<Name>/raw`` directory of IDX files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinysnn.data import (
    DATASETS,
    DataFileError,
    Dataset,
    default_data_root,
    load_dataset,
    write_idx,
)

N_TRAIN, N_TEST = 12, 5


def _write_split(
    root: Path,
    name: str,
    split: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    gz: bool = False,
) -> tuple[Path, Path]:
    spec = DATASETS[name]
    suffix = ".gz" if gz else ""
    images_path = root / spec.folder / (spec.images[split].base + suffix)
    labels_path = root / spec.folder / (spec.labels[split].base + suffix)
    write_idx(images_path, images)
    write_idx(labels_path, labels)
    return images_path, labels_path


def _fake(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.int64).to(torch.uint8)
    labels = (torch.arange(n) % 10).to(torch.uint8)
    return images, labels


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_load_fake_dataset(tmp_path: Path, name: str, gz: bool) -> None:
    written = {}
    for split, n, seed in [("train", N_TRAIN, 0), ("test", N_TEST, 1)]:
        written[split] = _fake(n, seed)
        _write_split(tmp_path, name, split, *written[split], gz=gz)

    for split, (images, labels) in written.items():
        ds = load_dataset(name, split, str(tmp_path))
        assert (ds.name, ds.split, len(ds)) == (name, split, images.shape[0])
        assert ds.images.dtype == torch.uint8 and ds.images.shape == (len(ds), 28, 28)
        assert ds.labels.dtype == torch.int64 and ds.labels.shape == (len(ds),)
        assert torch.equal(ds.images, images)
        assert torch.equal(ds.labels, labels.long())


def test_plain_file_preferred_over_gz(tmp_path: Path) -> None:
    images, labels = _fake(4, 0)
    _write_split(tmp_path, "mnist", "test", images, labels, gz=False)
    _write_split(tmp_path, "mnist", "test", torch.zeros_like(images), labels, gz=True)
    assert torch.equal(load_dataset("mnist", "test", tmp_path).images, images)


def test_subset(tmp_path: Path) -> None:
    _write_split(tmp_path, "mnist", "train", *_fake(N_TRAIN, 0))
    ds = load_dataset("mnist", "train", tmp_path)
    sub = ds.subset(3)
    assert isinstance(sub, Dataset) and len(sub) == 3
    assert torch.equal(sub.images, ds.images[:3]) and torch.equal(sub.labels, ds.labels[:3])
    assert len(ds.subset(0)) == 0 and len(ds.subset(N_TRAIN)) == N_TRAIN
    for bad in (-1, N_TRAIN + 1):
        with pytest.raises(ValueError):
            ds.subset(bad)


def _assert_names(exc: pytest.ExceptionInfo[DataFileError], path: Path) -> None:
    assert str(path) in str(exc.value)
    assert "make data" in str(exc.value)


def test_mismatched_counts(tmp_path: Path) -> None:
    images, _ = _fake(6, 0)
    _, labels = _fake(5, 0)
    _, labels_path = _write_split(tmp_path, "mnist", "train", images, labels)
    with pytest.raises(DataFileError, match="5 labels") as info:
        load_dataset("mnist", "train", tmp_path)
    _assert_names(info, labels_path)


def test_label_out_of_range(tmp_path: Path) -> None:
    images, labels = _fake(6, 0)
    labels[2] = 10
    _, labels_path = _write_split(tmp_path, "fashion_mnist", "test", images, labels, gz=True)
    with pytest.raises(DataFileError, match="out of range") as info:
        load_dataset("fashion_mnist", "test", tmp_path)
    _assert_names(info, labels_path)


@pytest.mark.parametrize(
    "images",
    [
        torch.zeros(4, 28, 27, dtype=torch.uint8),
        torch.zeros(4, 784, dtype=torch.uint8),
        torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
        torch.zeros(4, 28, 28, dtype=torch.float32),
    ],
    ids=["28x27", "flat", "4d", "float32"],
)
def test_bad_images(tmp_path: Path, images: torch.Tensor) -> None:
    images_path, _ = _write_split(tmp_path, "mnist", "test", images, torch.zeros(4, dtype=torch.uint8))
    with pytest.raises(DataFileError, match=r"\[N, 28, 28\]") as info:
        load_dataset("mnist", "test", tmp_path)
    _assert_names(info, images_path)


@pytest.mark.parametrize(
    "labels", [torch.zeros(4, 1, dtype=torch.uint8), torch.zeros(4, dtype=torch.int32)], ids=["2d", "int32"]
)
def test_bad_labels(tmp_path: Path, labels: torch.Tensor) -> None:
    _, labels_path = _write_split(tmp_path, "mnist", "test", _fake(4, 0)[0], labels)
    with pytest.raises(DataFileError, match="1-D uint8 labels") as info:
        load_dataset("mnist", "test", tmp_path)
    _assert_names(info, labels_path)


def test_unknown_name_and_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fashion_mnist, mnist"):
        load_dataset("cifar10", "train", tmp_path)
    with pytest.raises(ValueError, match="train, test"):
        load_dataset("mnist", "validation", tmp_path)


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as info:
        load_dataset("mnist", "train", tmp_path / "nowhere")
    _assert_names(info, tmp_path / "nowhere" / "MNIST" / "raw" / "train-images-idx3-ubyte")


def test_missing_labels_file(tmp_path: Path) -> None:
    images_path, labels_path = _write_split(tmp_path, "mnist", "test", *_fake(3, 0))
    labels_path.unlink()
    with pytest.raises(DataFileError) as info:
        load_dataset("mnist", "test", tmp_path)
    _assert_names(info, labels_path)


def test_default_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TINYSNN_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("TINYSNN_DATA")
    assert default_data_root().name == "data"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_dataset(name: str) -> None:
    root = default_data_root()
    spec = DATASETS[name]
    folder = root / spec.folder
    if not all(
        (folder / f.base).is_file() or (folder / f"{f.base}.gz").is_file()
        for files in (spec.images, spec.labels)
        for f in files.values()
    ):
        pytest.skip(f"{name} not found under {folder}; run `make data` (or set TINYSNN_DATA)")

    for split, n in [("train", 60000), ("test", 10000)]:
        ds = load_dataset(name, split, root)
        assert len(ds) == n
        assert ds.images.shape == (n, 28, 28) and ds.images.dtype == torch.uint8
        assert int(ds.images.max()) == 255
        counts = torch.bincount(ds.labels, minlength=10)
        assert counts.numel() == 10 and int(counts.sum()) == n
        if split == "train":
            assert all(5000 <= c <= 7000 for c in counts.tolist()), counts.tolist()
