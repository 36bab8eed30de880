"""Training engine: strict configs, deterministic resume after a kill, atomic checkpoints, DDP.

The loop tests use a toy task (a tiny conv net regressing a random-augmented target) so they
run in seconds; the bottom-up pipeline on real-format data is the integration smoke test.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any, Mapping

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from pose_core.engine.checkpointing import (
    CheckpointError,
    atomic_save,
    find_resume_checkpoint,
    load_training_checkpoint,
)
from pose_core.engine.config import (
    ConfigError,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    ValidationConfig,
    from_dict,
    load_config,
    to_yaml,
)
from pose_core.engine import distributed
from pose_core.engine.distributed import DistributedContext
from pose_core.engine.optim import EpochStepSchedule
from pose_core.engine.trainer import NonFiniteLossError, Trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config" / "train"


# ------------------------------------------------------------------------------- toy task


class ToyDataset(Dataset):
    """Fixed random images; the target is a random flip of a blurred image (numpy RNG), so
    resuming must restore the augmentation stream too."""

    def __init__(self, size: int = 24) -> None:
        rng = np.random.default_rng(0)
        self.images = rng.normal(size=(size, 3, 16, 16)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.images[index]
        if np.random.rand() < 0.5:
            image = image[:, :, ::-1]
        image = np.ascontiguousarray(image)
        target = image.mean(axis=0, keepdims=True) * 0.5
        return {"image": torch.from_numpy(image), "target": torch.from_numpy(target)}


class ToyTask:
    """A `TrainingTask` over `ToyDataset`; validation reports minus the mean loss."""

    def __init__(self, nan_at_step: int = -1) -> None:
        self.calls = 0
        self.nan_at_step = nan_at_step

    def build_model(self) -> nn.Module:
        torch.manual_seed(123)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 1, 1)
        )

    def train_dataset(self) -> Dataset:
        return ToyDataset()

    def inputs(self, batch: Mapping[str, Any], device: torch.device) -> Tensor:
        return batch["image"].to(device)

    def loss(self, outputs: Tensor, batch: Mapping[str, Any], device: torch.device) -> dict[str, Tensor]:
        self.calls += 1
        mse = ((outputs - batch["target"].to(device)) ** 2).mean()
        if self.calls == self.nan_at_step:
            mse = mse * float("nan")
        return {"mse": mse, "l1": 0.1 * (outputs - batch["target"].to(device)).abs().mean()}

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        data = ToyDataset()
        images = torch.from_numpy(data.images).to(device)
        target = images.mean(dim=1, keepdim=True) * 0.5
        return {"AP": -float(((model(images) - target) ** 2).mean())}


def toy_config(**overrides: Any) -> TrainConfig:
    base = dict(
        name="toy",
        model=ModelConfig(name="toy"),
        epochs=3,
        batch_size=4,
        device="cpu",
        num_threads=1,  # 2 OpenMP threads on the shared 2 cores spin and crawl
        seed=7,
        log_every=1,
        optim=OptimConfig(lr=0.01, lr_milestones=(2,), warmup_iters=3),
        validation=ValidationConfig(every_epochs=1),
    )
    base.update(overrides)
    return TrainConfig(**base)


CPU = DistributedContext(0, 1, 0, torch.device("cpu"), "")


# ------------------------------------------------------------------------------- configs


def test_all_shipped_configs_load_and_round_trip(tmp_path: pathlib.Path) -> None:
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    for required in (
        "higherhrnet_w32_512_coco", "higherhrnet_w48_640_coco", "higherhrnet_w32_512_crowdpose",
        "hrnet_w32_256x192_coco", "hrnet_w32_256x192_coco_dark", "synthetic_lite",
        "synthetic_smoke",
    ):
        assert required in names
    for name in names:
        config = load_config(CONFIG_DIR / f"{name}.yaml")
        dumped = tmp_path / f"{name}.yaml"
        to_yaml(config, dumped)
        assert load_config(dumped) == config
    official = load_config(CONFIG_DIR / "higherhrnet_w32_512_coco.yaml")
    assert official.optim.lr == 0.001 and official.optim.weight_decay == 0.0
    assert official.optim.lr_milestones == (200, 260) and official.epochs == 300
    assert official.batch_size == 12 and official.loss.push_factor == 0.001
    assert load_config(CONFIG_DIR / "higherhrnet_w48_640_coco.yaml").amp == "fp16"
    assert load_config(CONFIG_DIR / "hrnet_w32_256x192_coco_dark.yaml").codec.encoding == "dark"


def test_unknown_key_names_file_and_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel: {name: m}\noptim:\n  lr: 0.1\n  learning_rat: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "optim.learning_rat" in str(info.value)
    path.write_text("name: x\nmodel: {name: m}\nepochz: 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        load_config(path)


def test_wrong_types_and_missing_keys_are_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="'epochs'"):
        from_dict({"name": "x", "model": {"name": "m"}, "epochs": "ten"}, source="f.yaml")
    with pytest.raises(ConfigError, match="'amp'"):
        from_dict({"name": "x", "model": {"name": "m"}, "amp": "fp8"}, source="f.yaml")
    with pytest.raises(ConfigError, match="missing required key 'model.name'"):
        from_dict({"name": "x", "model": {}}, source="f.yaml")
    with pytest.raises(ConfigError, match="f.yaml"):
        from_dict({"name": "x", "model": {"name": "m"}, "validation": {"flip_test": 1}},
                  source="f.yaml")


def test_overrides_are_typed_and_strict(tmp_path: pathlib.Path) -> None:
    path = CONFIG_DIR / "higherhrnet_w32_512_coco.yaml"
    config = load_config(path, ["optim.lr=0.002", "epochs=5", "optim.lr_milestones=[1,2]",
                                "model.init_checkpoint=null", "amp=bf16"])
    assert config.optim.lr == 0.002 and config.epochs == 5
    assert config.optim.lr_milestones == (1, 2) and config.amp == "bf16"
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(path, ["optim.lrr=0.1"])


def test_schedule_is_multistep_per_epoch_with_warmup() -> None:
    schedule = EpochStepSchedule(iterations_per_epoch=10, milestones=(2, 4), gamma=0.1,
                                 warmup_iters=5, warmup_factor=0.0)
    assert schedule(0) == 0.0 and schedule(5) == 1.0 and schedule(19) == 1.0
    assert schedule(20) == pytest.approx(0.1) and schedule(45) == pytest.approx(0.01)


# ------------------------------------------------------------------------------- checkpoints


def test_atomic_checkpoint_ignores_partial_temp_files(tmp_path: pathlib.Path) -> None:
    trainer = Trainer(toy_config(epochs=1), ToyTask(), tmp_path, context=CPU)
    result = trainer.train()
    assert result.epoch == 1
    # a writer killed mid-way leaves only a temp file; a corrupt last.pt is skipped too
    (tmp_path / ".last.pt.abcd.tmp").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "epoch_0009.pt").write_bytes(b"not a checkpoint")
    found = find_resume_checkpoint(tmp_path)
    assert found == tmp_path / "epoch_0001.pt" or found == tmp_path / "last.pt"
    payload = load_training_checkpoint(found)
    assert payload["format_version"] == 1 and payload["epoch"] == 1
    assert set(payload) >= {"model", "optimizer", "scheduler", "scaler", "epoch", "step",
                            "best_metric", "config"}
    assert not any(k.startswith("module.") for k in payload["model"])
    # atomic_save never leaves the destination half-written when the payload fails to pickle
    target = tmp_path / "x.pt"
    atomic_save({"a": torch.zeros(2)}, target)
    with pytest.raises(Exception):
        atomic_save({"a": lambda: 0}, target)
    assert torch.load(target, weights_only=True)["a"].shape == (2,)
    assert not list(tmp_path.glob(".x.pt.*.tmp"))


def test_find_resume_checkpoint_skips_a_file_pruned_while_looking(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a live run the trainer deletes old epoch files: one that vanishes between being
    read and being dated is skipped, not an error."""
    from pose_core.engine import checkpointing

    Trainer(toy_config(epochs=2, keep_checkpoints=2), ToyTask(), tmp_path, context=CPU).train()
    assert (tmp_path / "epoch_0001.pt").is_file() and (tmp_path / "epoch_0002.pt").is_file()
    real_load = checkpointing.load_training_checkpoint

    def load_then_prune(path: pathlib.Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        payload = real_load(path, *args, **kwargs)
        if path.name == "epoch_0002.pt":
            path.unlink()  # what `_prune_epoch_checkpoints` of a live run does
        return payload

    monkeypatch.setattr(checkpointing, "load_training_checkpoint", load_then_prune)
    found = checkpointing.find_resume_checkpoint(tmp_path)
    assert found is not None and found.name != "epoch_0002.pt" and found.is_file()


def test_non_finite_loss_raises(tmp_path: pathlib.Path) -> None:
    trainer = Trainer(toy_config(), ToyTask(nan_at_step=3), tmp_path, context=CPU)
    with pytest.raises(NonFiniteLossError, match="step 2"):
        trainer.train()


def test_resume_continues_with_identical_losses(tmp_path: pathlib.Path) -> None:
    straight = Trainer(toy_config(), ToyTask(), tmp_path / "a", context=CPU).train()
    per_epoch = len(straight.losses) // 3
    # "killed" after epoch 1 checkpoint plus a few steps of epoch 2 (no checkpoint for those)
    first = Trainer(toy_config(), ToyTask(), tmp_path / "b", context=CPU)
    first.train(stop_after_steps=per_epoch + 2)
    resumed = Trainer(toy_config(), ToyTask(), tmp_path / "b", context=CPU).train()
    assert resumed.step == straight.step
    assert resumed.losses == straight.losses[per_epoch:]  # bit-identical on CPU
    assert resumed.best_metric == straight.best_metric
    rows = (tmp_path / "b" / "val_log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,step,AP") and len(rows) == 1 + 3


KILL_SCRIPT = textwrap.dedent(
    """
    import pathlib, sys, time
    import test_trainer as t
    from pose_core.engine.trainer import Trainer

    class Slow(t.ToyTask):
        def loss(self, outputs, batch, device):
            time.sleep(0.05)
            return super().loss(outputs, batch, device)

    config = t.toy_config(epochs=50)
    Trainer(config, Slow(), pathlib.Path(sys.argv[1]), context=t.CPU).train()
    """
)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path: pathlib.Path) -> None:
    """A real process killed with SIGKILL after writing checkpoints resumes bit-identically."""
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    run_dir = tmp_path / "run"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(pathlib.Path(__file__).parent), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            found = find_resume_checkpoint(run_dir)
            try:
                if found is not None and load_training_checkpoint(found)["epoch"] >= 2:
                    break
            except CheckpointError:  # pruned by the live run between the two calls
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the training process wrote no checkpoint in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    payload = load_training_checkpoint(find_resume_checkpoint(run_dir))
    done = payload["epoch"]
    config = toy_config(epochs=done + 1)
    straight = Trainer(config, ToyTask(), tmp_path / "straight", context=CPU).train()
    resumed = Trainer(config, ToyTask(), run_dir, context=CPU).train()
    per_epoch = len(straight.losses) // (done + 1)
    assert resumed.losses == straight.losses[done * per_epoch:]


# ------------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _join_gloo_group(rank: int, world_size: int, port: int) -> DistributedContext:
    """In a spawned worker: the torchrun environment of `rank`, then the gloo process group."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    return distributed.init_distributed("cpu")


def _ddp_worker(rank: int, world_size: int, port: int, run_dir: str, out_dir: str) -> None:
    context = _join_gloo_group(rank, world_size, port)
    try:
        assert context.backend == "gloo" and context.world_size == world_size
        trainer = Trainer(toy_config(epochs=2), ToyTask(), run_dir, context=context)
        assert len(trainer.train_loader) == 24 // world_size // 4  # DistributedSampler shards
        result = trainer.train(resume=False)
        params = torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])
        grads = torch.cat([p.grad.reshape(-1) for p in trainer.model.parameters()])
        torch.save({"params": params, "grads": grads, "losses": result.losses,
                    "best": result.best_metric}, pathlib.Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.destroy_distributed()


@pytest.mark.slow
def test_ddp_gloo_two_processes_stay_in_sync(tmp_path: pathlib.Path) -> None:
    """2 CPU processes (gloo): each rank sees different batches (different losses), yet the
    all-reduced gradients and the parameters are identical on both ranks; rank 0 writes the
    checkpoint (no `module.` prefix)."""
    torch.multiprocessing.spawn(
        _ddp_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path)), nprocs=2,
        join=True,
    )
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["losses"] != rank1["losses"]
    torch.testing.assert_close(rank0["grads"], rank1["grads"], rtol=0, atol=1e-7)
    torch.testing.assert_close(rank0["params"], rank1["params"], rtol=0, atol=0)
    assert rank0["best"] == rank1["best"] is not None
    payload = load_training_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["epoch"] == 2 and not any(k.startswith("module.") for k in payload["model"])
    single = Trainer(toy_config(epochs=2), ToyTask(), tmp_path / "single", context=CPU)
    assert not torch.equal(
        torch.cat([p.detach().reshape(-1) for p in single.model.parameters()]),
        rank0["params"],
    )  # the DDP run really trained (initial weights differ from the result)


def _ddp_budget_worker(rank: int, world_size: int, port: int, run_dir: str, out_dir: str) -> None:
    context = _join_gloo_group(rank, world_size, port)
    try:
        # Only rank 1 runs out of time (ranks start and run at different speeds; here its
        # budget is simply shorter): alone, it would leave the loop and wait at the checkpoint
        # barrier while rank 0 waits in the next gradient all-reduce.
        minutes = 1e-9 if rank == 1 else 1000.0
        trainer = Trainer(toy_config(epochs=3, max_minutes=minutes), ToyTask(), run_dir,
                          context=context)
        result = trainer.train(resume=False)
        torch.save({"losses": result.losses, "stopped": result.stopped_early,
                    "epoch": trainer.epoch}, pathlib.Path(out_dir) / f"budget{rank}.pt")
    finally:
        distributed.destroy_distributed()


@pytest.mark.slow
def test_ddp_time_budget_stops_every_rank_together(tmp_path: pathlib.Path) -> None:
    """`max_minutes` under DDP: when one rank's budget runs out, all ranks stop after the same
    iteration (no hang), and the run is resumable (a complete last.pt)."""
    processes = torch.multiprocessing.spawn(
        _ddp_budget_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path)),
        nprocs=2, join=False,
    )
    deadline = time.monotonic() + 240.0
    try:
        while not processes.join(timeout=5.0):
            if time.monotonic() > deadline:
                pytest.fail("DDP ranks did not stop together within 240 s (hang)")
    finally:
        for process in processes.processes:
            if process.is_alive():
                process.kill()
    rank0 = torch.load(tmp_path / "budget0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "budget1.pt", weights_only=True)
    assert rank0["stopped"] and rank1["stopped"]
    assert len(rank0["losses"]) == len(rank1["losses"]) == 1  # both stopped after iteration 1
    assert rank0["epoch"] == rank1["epoch"] == 1
    payload = load_training_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["epoch"] == 1
