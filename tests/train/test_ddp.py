"""DDP on CPU: two gloo processes train the same tiny run; each sees a disjoint half of the data and the
weights stay identical across ranks (gradients are all-reduced)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.train._stores import TINY, make_store

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, store: str, out: str, dump: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from facesr.train import distributed
    from facesr.train.config import load_config
    from facesr.train.trainer import Trainer

    cfg = load_config("seed000-bicubic", TINY + [f"max_steps={STEPS}",
                                                 "epochs=1", "val.every=100"])
    seen: list[list[int]] = []
    trainer = Trainer(cfg, store, out, on_step=lambda batches, res: seen.append(batches[0]["index"].tolist()))
    trainer.fit()
    torch.save({"seen": seen, "weights": {k: v.clone() for k, v in trainer.model.state_dict().items()}},
               Path(dump) / f"rank{rank}.pt")
    distributed.cleanup()


@pytest.mark.slow
def test_two_gloo_ranks_disjoint_data_equal_weights(tmp_path):
    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=32, n_val=8)
    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, _free_port(), str(store), str(out), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # each rank trained STEPS batches of 4, from disjoint halves of the split
    assert len(r0["seen"]) == len(r1["seen"]) == STEPS
    s0 = {i for b in r0["seen"] for i in b}
    s1 = {i for b in r1["seen"] for i in b}
    assert len(s0) == len(s1) == 4 * STEPS
    assert not s0 & s1
    # gradients were synced: identical weights after the steps
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    # and they moved away from the initialisation (training happened)
    from facesr import models
    from facesr.train import checkpoint as ckpt

    torch.manual_seed(42)
    init = models.build("unet_light", base_channels=4, refine_blocks=1).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in r0["weights"].items())

    state = ckpt.load_state(ckpt.find(out, "last"))
    assert state["world_size"] == 2 and state["train"]["step"] == STEPS
    # only rank 0 wrote logs: one row per step
    assert len((out / "steps.csv").read_text().splitlines()) == 1 + STEPS
