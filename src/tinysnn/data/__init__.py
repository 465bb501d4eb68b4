"""Dataset files: IDX reading/writing and MNIST / Fashion-MNIST loading."""

from tinysnn.data.datasets import (
    DATASETS,
    SPLITS,
    Dataset,
    DatasetSpec,
    IdxFile,
    default_data_root,
    load_dataset,
)
from tinysnn.data.idx import DataFileError, read_idx, write_idx

__all__ = [
    "DATASETS",
    "SPLITS",
    "DataFileError",
    "Dataset",
    "DatasetSpec",
    "IdxFile",
    "default_data_root",
    "load_dataset",
    "read_idx",
    "write_idx",
]
