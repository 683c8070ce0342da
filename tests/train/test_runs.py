"""Trusting run folders (issue 11 items 1 and 7): no unpickling, one writer, checksummed checkpoints with
fallback, no resume loop on an empty state file, a divergence guard; and the training-side options that
change how a step is made (gradient accumulation, per-step schedules, MRRGAN's D on the updated G)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facesr.errors import CheckpointError, StoreLockedError, TrainingError
from facesr.train import checkpoint as ckpt
from facesr.train import safestate
from facesr.train.config import load_config
from facesr.train.logging import read_csv
from facesr.train.runlock import RunLock
from facesr.train.trainer import Trainer, train
from tests.train._stores import TINY, make_store

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "FACESR_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _cfg(*extra: str, preset: str = "seed000-bicubic"):
    return load_config(preset, TINY + list(extra))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facesr.cli", "train", "-q", *args], env=ENV, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2, res.stderr  # the error and its hint
    return res.stderr


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader executed the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    store = root / "tiny.zarr"
    make_store(store, n_train=16, n_val=8)
    out = root / "run"
    try:
        train(_cfg("epochs=1", "checkpoint.keep_best=false", "val.grid_every=100"), store, out)
    finally:
        torch.set_num_threads(before)
    return store, out


def _copy(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst)
    return dst


# ------------------------------------------------------------------------------------ 1. no unpickling
def test_safestate_round_trip_and_allow_list(tmp_path):
    m = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(m.parameters())
    m(torch.ones(1, 2)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [3, 5])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    from facesr.train.state import rng_state

    tree = {"optimizer": opt.state_dict(), "sched": sched.state_dict(), "plateau": plateau.state_dict(),
            "rng": rng_state()}
    safestate.save(tmp_path, "s", tree)
    back = safestate.load(tmp_path, "s")
    assert back["sched"]["milestones"] == sched.state_dict()["milestones"]  # a Counter, as MultiStepLR needs
    assert back["plateau"]["best"] == float("inf") and back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert back["rng"]["python"] == tree["rng"]["python"]
    with pytest.raises(CheckpointError, match="unknown entry"):
        safestate.decode({"$pickle": "x"}, {})
    with pytest.raises(CheckpointError, match="not in the file"):
        safestate.decode({"$t": "9"}, {})


@pytest.mark.parametrize("target", ["train_state.pt", "train_state.json", "train_state.safetensors",
                                    "model.safetensors", "state.json"])
@pytest.mark.parametrize("checksums", [True, False])
def test_crafted_pickle_in_a_run_is_refused_never_executed(one_epoch_run, tmp_path, target, checksums):
    store, run = one_epoch_run
    run = _copy(run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    last = run / "checkpoints" / "last"
    if not checksums:  # a checkpoint without checksums (or with forged ones): the parsers must refuse it too
        state = json.loads((last / "state.json").read_text())
        state.pop("files")
        (last / "state.json").write_text(json.dumps(state))
    (last / target).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError) as err:
        Trainer(_cfg("epochs=2"), store, run, resume=True).fit()
    assert not marker.exists()
    assert str(last) in str(err.value) or target in str(err.value)
    assert "\n" not in str(err.value)


def test_pickle_refused_by_the_cli_and_by_model_init(one_epoch_run, tmp_path):
    store, run = one_epoch_run
    run = _copy(run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    (run / "checkpoints" / "last" / "train_state.pt").write_bytes(pickle.dumps(_Payload(marker)))
    err = _one_line_error(_cli("--out", str(run), "--resume"))
    assert "pickle" in err and not marker.exists()
    fake = tmp_path / "init.safetensors"
    fake.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        Trainer(_cfg("epochs=1", f"model.init={fake}"), store, tmp_path / "run2")
    assert not marker.exists()


# ------------------------------------------------------------------------------------ 7. run folders
@pytest.mark.slow
def test_second_writer_is_refused_in_one_line(tmp_path):
    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=16, n_val=8)
    run = tmp_path / "run"
    args = [*TINY, "epochs=50"]
    proc = subprocess.Popen([sys.executable, "-m", "tests.train._slow_train", str(store), str(run), "0.3",
                             "seed000-bicubic", *args], env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "steps.csv").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
        sets = [a for kv in args for a in ("--set", kv)]
        err = _one_line_error(_cli("--store", str(store), "--out", str(run), "--preset", "seed000-bicubic", *sets))
        assert "being written by pid" in err and str(proc.pid) in err
        with pytest.raises(StoreLockedError, match="being written"):  # a resume is refused alike
            Trainer(_cfg("epochs=50"), store, run, resume=True)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    RunLock(run).acquire().release()  # the kernel dropped the dead writer's lock


def _two_epoch_run(tmp_path, **kw) -> tuple[Path, Path]:
    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=16, n_val=8)
    run = tmp_path / "run"
    # lr tiny and criterion psnr with early stop off: epoch 1 is best (improved), epoch 2 maybe not
    train(_cfg("epochs=2", "val.grid_every=100", *kw.get("extra", ())), store, run)
    return store, run


def test_corrupt_last_falls_back_to_best_then_names_the_files(tmp_path, one_thread):
    store, run = _two_epoch_run(tmp_path)
    last, best = run / "checkpoints" / "last", run / "checkpoints" / "best"
    data = bytearray((last / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in a weight
    (last / "model.safetensors").write_bytes(bytes(data))
    assert "SHA-256" in ckpt.verify(last) and ckpt.verify(best) is None
    notes = []

    class Notes:
        def __getattr__(self, name):
            return lambda *a, **k: notes.append(a[0]) if name == "message" else None

    trainer = Trainer(_cfg("epochs=3"), store, run, resume=True, reporter=Notes())
    assert trainer.resume_from == best and any("model.safetensors" in n for n in notes)
    res = trainer.fit()
    assert res.reason == "epochs" and res.state["epoch"] == 3
    # both damaged: one line naming each file
    for folder in (run / "checkpoints" / "last", run / "checkpoints" / "best"):
        (folder / "train_state.json").write_text("{}")
    with pytest.raises(CheckpointError) as err:
        Trainer(_cfg("epochs=4"), store, run, resume=True)
    msg = str(err.value)
    assert str(last / "train_state.json") in msg and str(best / "train_state.json") in msg and "\n" not in msg


@pytest.mark.slow
def test_zero_byte_state_file_is_one_line_not_a_loop(tmp_path, one_epoch_run):
    store, run = one_epoch_run
    run = _copy(run, tmp_path / "run")
    (run / "checkpoints" / "last" / "state.json").write_bytes(b"")
    t0 = time.monotonic()
    err = _one_line_error(_cli("--out", str(run), "--resume"))
    assert "state.json" in err and "empty file" in err and time.monotonic() - t0 < 120


def test_divergence_stops_with_one_line(tmp_path, one_thread):
    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=16, n_val=8)
    with pytest.raises(TrainingError, match="diverged|non-finite"):
        train(_cfg("epochs=2", "optim.lr=1e30"), store, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last").exists()  # nothing diverged was saved
    sets = [a for kv in [*TINY, "epochs=2", "optim.lr=1e30"] for a in ("--set", kv)]
    err = _one_line_error(_cli("--store", str(store), "--out", str(tmp_path / "cli"), "--preset", "seed000-bicubic",
                               *sets))
    assert "diverged" in err or "non-finite" in err


# ------------------------------------------------------------------------------ step options (issue 10)
def test_accumulation_equals_the_big_batch(tmp_path, tiny_store, one_thread):
    seen = {}
    weights = {}
    for name, extra in (("big", ["data.batch_size=4"]), ("acc", ["data.batch_size=2", "optim.accumulate=2"])):
        idx = []
        t = Trainer(_cfg("max_steps=1", "val.every=100", *extra), tiny_store, tmp_path / name,
                    on_step=lambda batches, res: idx.extend(i for b in batches for i in b["index"].tolist()))
        t.fit()
        seen[name], weights[name] = idx, {k: v.clone() for k, v in t.model.state_dict().items()}
        assert t.state.step == 1 and t.state.batch == (1 if name == "big" else 2)
    assert seen["big"] == seen["acc"] and len(seen["big"]) == 4
    for k, v in weights["big"].items():
        assert torch.allclose(v, weights["acc"][k], rtol=1e-4, atol=1e-6), k


def test_per_step_multistep_schedule(tmp_path, tiny_store, one_thread):
    train(_cfg("sched.name=multistep", "sched.interval=step", "sched.milestones=[2]", "sched.gamma=0.5",
               "max_steps=4", "val.every=100"), tiny_store, tmp_path / "run")
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "run" / "steps.csv")]
    assert lrs == pytest.approx([1e-4, 5e-5, 5e-5, 5e-5])  # logged after the step: halved once step 2 is done


def test_mrrgan_discriminator_sees_the_updated_generator(tmp_path, tiny_store, one_thread):
    gan = ["model.name=mrrnet", "model.args={min_ch: 4, max_ch: 8, res_depth: 1}", "data.priors=[]",
           "loss.perceptual=0", "max_steps=1", "model.discriminator_args={base_channels: 4}", "val.every=100"]
    rows = {}
    for mode in ("updated", "same"):
        t = Trainer(load_config("mrrgan", TINY + gan + [f"loss.d_input={mode}"]), tiny_store, tmp_path / mode)
        assert t.optim.dsched is None and t.optim.sched is not None  # StepLR on the generator only
        t.fit()
        rows[mode] = read_csv(tmp_path / mode / "steps.csv")[0]
    assert rows["updated"]["loss"] == rows["same"]["loss"]  # the same generator step
    assert rows["updated"]["d_loss"] != rows["same"]["d_loss"]  # D trained on another output


def test_augmented_run_resumes_exactly(tmp_path, tiny_store, one_thread):
    """data.augment on (flip, dihedral, rescale: the LR remade on the fly): stopping and resuming mid-epoch
    logs the losses of the uninterrupted run, since each sample's transform is keyed by (seed, epoch, row)."""
    aug = ["data.augment.hflip=0.5", "data.augment.rot90=true", "data.augment.rescale=[1.0, 1.3]", "epochs=2",
           "val.grid_every=100"]
    train(_cfg(*aug), tiny_store, tmp_path / "ref")
    train(_cfg(*aug, "max_steps=3"), tiny_store, tmp_path / "run")
    Trainer(_cfg(*aug), tiny_store, tmp_path / "run", resume=True).fit()
    a, b = read_csv(tmp_path / "ref" / "steps.csv"), read_csv(tmp_path / "run" / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [str(i) for i in range(1, 9)]
    assert [float(r["loss"]) for r in b] == pytest.approx([float(r["loss"]) for r in a], rel=1e-6)
    plain = read_csv(tmp_path / "ref" / "steps.csv")[0]["loss"]
    train(_cfg("epochs=1", "max_steps=1", "val.every=100"), tiny_store, tmp_path / "plain")
    assert read_csv(tmp_path / "plain" / "steps.csv")[0]["loss"] != plain  # augmentation changed the batch


def test_run_json_records_the_store_snapshot(tmp_path, one_thread):
    store = make_store(tmp_path / "tiny.zarr", n_train=8, n_val=4)
    sid = store.commit()["id"]
    train(_cfg("max_steps=1", "data.batch_size=4"), tmp_path / "tiny.zarr", tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["store_snapshot"] == sid and run["store"] == str(tmp_path / "tiny.zarr")
