import pytest
import torch

from tinysnn.data.datasets import default_data_root


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns xdist_group marks into groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, --dist loadgroup) every test that builds a torch.compile
    kernel runs on one worker: from an empty inductor cache (as in CI) two workers would each build
    the same kernels, tens of seconds apiece; one worker builds each once and reuses it."""
    for item in items:
        if item.get_closest_marker("compiles") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("compiles"))


def real_mnist_available() -> bool:
    return (default_data_root() / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


requires_mnist = pytest.mark.skipif(not real_mnist_available(), reason="real MNIST missing: run `make data`")
