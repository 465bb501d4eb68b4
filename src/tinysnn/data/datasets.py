"""MNIST-style datasets loaded from IDX files in the torchvision ``<Name>/raw`` layout."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch

from tinysnn.data.idx import DataFileError, read_idx

__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "DatasetSpec",
    "IdxFile",
    "default_data_root",
    "load_dataset",
]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
SPLITS = ("train", "test")


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset: base name, and whether ``<base>.gz`` is accepted too."""

    base: str
    may_be_gz: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives under the data root and which files make up each split."""

    folder: str
    images: Mapping[str, IdxFile]  # split -> images file
    labels: Mapping[str, IdxFile]  # split -> labels file


def _mnist_layout(folder: str) -> DatasetSpec:
    return DatasetSpec(
        folder=folder,
        images={"train": IdxFile("train-images-idx3-ubyte"), "test": IdxFile("t10k-images-idx3-ubyte")},
        labels={"train": IdxFile("train-labels-idx1-ubyte"), "test": IdxFile("t10k-labels-idx1-ubyte")},
    )


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "mnist": _mnist_layout("MNIST/raw"),
        "fashion_mnist": _mnist_layout("FashionMNIST/raw"),
    }
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """An in-memory image classification split."""

    images: torch.Tensor  # uint8 [N, 28, 28]
    labels: torch.Tensor  # int64 [N]
    name: str
    split: str

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int) -> Dataset:
        """The first ``n`` examples (0 <= n <= len(self))."""
        if not 0 <= n <= len(self):
            raise ValueError(f"subset size must be in 0..{len(self)}, got {n}")
        return Dataset(self.images[:n], self.labels[:n], self.name, self.split)

    def tail(self, n: int, split: str) -> Dataset:
        """The last ``n`` examples (0 <= n <= len(self)), named ``split``."""
        if not 0 <= n <= len(self):
            raise ValueError(f"tail size must be in 0..{len(self)}, got {n}")
        start = len(self) - n
        return Dataset(self.images[start:], self.labels[start:], self.name, split)


def default_data_root() -> Path:
    """``$TINYSNN_DATA`` if set, else ``<repo>/data`` for a source checkout, else ``./data``."""
    if env := os.environ.get("TINYSNN_DATA"):
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file() and (repo / "src" / "tinysnn").is_dir():
        return repo / "data"
    return Path.cwd() / "data"


def _locate(directory: Path, file: IdxFile) -> Path:
    plain = directory / file.base
    if plain.is_file():
        return plain
    if file.may_be_gz and (gz := plain.with_name(plain.name + ".gz")).is_file():
        return gz
    alternatives = f" (or {plain.name}.gz)" if file.may_be_gz else ""
    raise DataFileError(
        f"{plain}{alternatives}: file not found. Run `make data` to fetch the datasets, "
        "or set TINYSNN_DATA to the directory that holds them."
    )


def load_dataset(name: str, split: str, root: str | Path) -> Dataset:
    """Load split ``"train"`` or ``"test"`` of dataset ``name`` (a key of ``DATASETS``) from ``root``.

    Raises:
        ValueError: unknown dataset name or split.
        DataFileError: a file is missing or does not hold N 28x28 uint8 images with N labels in 0..9.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid choices: {', '.join(sorted(DATASETS))}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
    spec = DATASETS[name]
    directory = Path(root) / spec.folder
    images_path = _locate(directory, spec.images[split])
    labels_path = _locate(directory, spec.labels[split])
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    fix = "delete it and run `make data`"
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise DataFileError(
            f"{images_path}: expected uint8 images of shape [N, 28, 28], "
            f"got {images.dtype} {list(images.shape)}; {fix}."
        )
    if labels.dtype != torch.uint8 or labels.dim() != 1:
        raise DataFileError(
            f"{labels_path}: expected 1-D uint8 labels, got {labels.dtype} {list(labels.shape)}; {fix}."
        )
    if labels.shape[0] != images.shape[0]:
        raise DataFileError(
            f"{labels_path}: {labels.shape[0]} labels but {images_path} has {images.shape[0]} images; "
            f"{fix} (both files)."
        )
    if labels.numel() and int(labels.max()) >= NUM_CLASSES:
        raise DataFileError(
            f"{labels_path}: label {int(labels.max())} out of range 0..{NUM_CLASSES - 1}; {fix}."
        )
    return Dataset(images=images, labels=labels.long(), name=name, split=split)
