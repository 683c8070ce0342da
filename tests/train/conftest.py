"""Fixtures for the trainer tests: a tiny synthetic store and a tiny trained run (one thread, CPU)."""

from __future__ import annotations

import pytest
import torch

from tests.train._stores import TINY, make_store


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "tiny.zarr"
    make_store(path, n_train=16, n_val=8, n_test=4)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_store):
    """A 2-epoch run of the tiny U-Net (best + last checkpoints, logs, a grid)."""
    from facesr.train.config import load_config
    from facesr.train.trainer import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    try:
        train(load_config("seed000-bicubic", TINY + ["epochs=2", "val.grid_every=1"]), tiny_store, out)
    finally:
        torch.set_num_threads(before)
    return out
