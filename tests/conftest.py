import pytest
import torch

from tinysnn.data.datasets import default_data_root


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)


def real_mnist_available() -> bool:
    return (default_data_root() / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


requires_mnist = pytest.mark.skipif(not real_mnist_available(), reason="real MNIST missing: run `make data`")
