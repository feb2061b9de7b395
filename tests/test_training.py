"""The shared training loop on the core's own trainable model (a Gaussian mixture on ring8)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import yaml

import zoo_core
from zoo_core.builtin.gmm import GaussianMixture
from zoo_core.builtin.gmm_trainer import GaussianMixtureTrainer
from zoo_core.errors import (
    CheckpointError,
    ConfigError,
    RunExistsError,
    TrainingDivergedError,
)
from zoo_core.plugin_manager import get_plugin_manager
from zoo_core.training import EXIT_INTERRUPTED, load_recipe, train
from zoo_core.training import checkpoint as ckpt
from zoo_core.training.batches import BatchOrder
from zoo_core.training.config import TrainConfig, validate_recipe
from zoo_core.training.optim import learning_rate

RECIPE = Path(zoo_core.__file__).parent / "recipes" / "gmm-ring8.yaml"


def small(**train) -> dict:
    """The shipped recipe, shortened for tests."""
    data = yaml.safe_load(RECIPE.read_text())
    data["train"].update(
        steps=40, batch_size=64, checkpoint_every=10, log_every=1, sample_every=None,
        schedule={"warmup_steps": 5, "decay": "cosine", "min_lr_ratio": 0.1},
        ema={"decay": 0.9, "start": 5},
    )  # fmt: skip
    data["train"].update(train)
    return data


def write_recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def zoo_cli(*args: str, **popen):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        capture_output=True, text=True, env=env, timeout=300, **popen,
    )  # fmt: skip


def final_state(out: Path) -> dict:
    state, _, _ = ckpt.load_checkpoint(out)
    return state


def assert_same_tensors(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same_tensors(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tensors(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


# ----------------------------------------------------------------------------- the loop
def test_training_fits_the_ring_and_exports_a_card(tmp_path):
    recipe = validate_recipe(small(steps=300, checkpoint_every=100, log_every=10,
                                   sample_every=150))  # fmt: skip
    result = train(recipe, tmp_path / "run", progress=False)
    assert result.status == "finished" and result.step == 300
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == list(range(10, 301, 10))
    assert records[-1]["loss"] < records[0]["loss"] - 1.0
    assert {"model/loss", "model/lr", "model/grad_norm"} <= records[0].keys()
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step-000000150.png", "step-000000300.png"
    ]  # fmt: skip
    # The exported EMA model loads as the gmm architecture and fits the ring far better
    # than its initialisation: held-out NLL against the exact ring density.
    model = zoo_core.load("gmm-ring8", weights=tmp_path / "run" / "model")
    test = zoo_core.load("gmm-ring8").sample(2000, seed=99)
    init = GaussianMixture.from_config({"components": 8, "dim": 2})
    with torch.no_grad():
        assert model.log_prob(test).mean() > init.log_prob(test).mean() + 1.0
    training = json.loads((tmp_path / "run" / "model" / "training.json").read_text())
    assert training["steps"] == 300 and training["dataset"] == "ring8"
    assert training["final_loss"] == pytest.approx(records[-1]["loss"])
    assert training["recipe"]["train"]["steps"] == 300 and training["weights"] == "ema"
    assert training["wall_time_s"] > 0 and "cpu" in training["hardware"]
    readme = (tmp_path / "run" / "model" / "README.md").read_text()
    assert "## Training" in readme and "zoo train recipe.yaml" in readme
    # Only the last keep_last committed checkpoints remain.
    assert ckpt.committed_steps(tmp_path / "run") == [300, 200]


def test_ema_is_the_exponential_average_of_the_weights(tmp_path):
    recipe = validate_recipe(small(steps=8, checkpoint_every=1, keep_last=20,
                                   ema={"decay": 0.5, "start": 3}))  # fmt: skip
    train(recipe, tmp_path / "run", progress=False)
    raw = {
        step: torch.load(ckpt._paths(tmp_path / "run", step)[0], weights_only=True)
        for step in range(1, 9)
    }
    expected = raw[3]["modules"]["model"]["means"].clone()  # copied up to the start step
    for step in range(4, 9):
        expected = 0.5 * expected + 0.5 * raw[step]["modules"]["model"]["means"]
    assert torch.allclose(raw[8]["ema"]["means"], expected, atol=1e-6)


def test_schedule_warmup_then_cosine():
    schedule = {"warmup_steps": 10, "decay": "cosine", "min_lr_ratio": 0.2}
    cfg = TrainConfig(steps=110, batch_size=1, schedule=schedule)
    rate = learning_rate(cfg)

    def factor(step):
        lr, momentum = rate(step, 1.0)
        assert momentum is None  # this schedule sets no momentum
        return lr

    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factor(110) == pytest.approx(0.2)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_one_cycle_is_torchs_one_cycle_lr_exactly(optimizer):
    one_cycle = {"pct_start": 0.25, "initial_div": 10.0, "final_div": 100.0}
    cfg = TrainConfig(steps=203, batch_size=1, schedule={"one_cycle": one_cycle})
    rate = learning_rate(cfg)
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "sgd":
        reference = torch.optim.SGD([param], lr=0.5, momentum=0.9)
    else:
        reference = torch.optim.AdamW([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=0.5, total_steps=203, pct_start=0.25, div_factor=10.0,
        final_div_factor=100.0,
    )  # fmt: skip
    for step in range(203):
        group = reference.param_groups[0]
        momentum = group["momentum"] if optimizer == "sgd" else group["betas"][0]
        assert rate(step, 0.5) == (group["lr"], momentum), step  # bit for bit
        reference.step()
        scheduler.step()
    with pytest.raises(ValueError, match="one_cycle replaces warmup_steps"):
        TrainConfig(steps=9, batch_size=1, schedule={"one_cycle": {}, "warmup_steps": 2})


def test_batch_order_is_a_pure_function_of_the_step():
    order = BatchOrder(size=10, batch=4, seed=3, start=0, rank=0, world=1)
    first = [order.indices(s) for s in range(6)]
    # An epoch (2 batches of 4, the remainder dropped) draws distinct indices.
    assert len(set(first[0] + first[1])) == 8 and first[0:2] != first[2:4]
    again = BatchOrder(size=10, batch=4, seed=3, start=5, rank=0, world=1)
    assert next(iter(again)) == first[5]
    halves = [BatchOrder(10, 4, 3, 0, rank, 2).indices(4) for rank in (0, 1)]
    assert halves[0] + halves[1] == first[4]
    with pytest.raises(ConfigError, match="divisible"):
        BatchOrder(10, 3, 0, 0, 0, 2)


def test_bf16_autocast_on_the_cpu(tmp_path):
    result = train(validate_recipe(small(steps=10, precision="bf16")), tmp_path / "r",
                   progress=False)  # fmt: skip
    assert result.status == "finished" and math.isfinite(result.final_loss)


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        train(validate_recipe(small(precision="fp16")), tmp_path / "r", progress=False)


# ----------------------------------------------------------------------------- exact resume
@pytest.mark.slow
def test_resume_in_a_new_process_is_bit_identical(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", small(workers=2))
    straight = zoo_cli("train", str(recipe), "--out", str(tmp_path / "a"), "--no-progress")
    assert straight.returncode == 0, straight.stderr
    first = zoo_cli("train", str(recipe), "--out", str(tmp_path / "b"), "--stop-after", "17",
                    "--no-progress")  # fmt: skip
    assert first.returncode == 0 and "stopped at step 17" in first.stdout, first.stderr
    second = zoo_cli("train", str(recipe), "--out", str(tmp_path / "b"), "--resume",
                     "--no-progress")  # fmt: skip
    assert second.returncode == 0, second.stderr
    a, b = final_state(tmp_path / "a"), final_state(tmp_path / "b")
    assert a["step"] == b["step"] == 40
    for key in ("modules", "ema", "optimizers", "scaler", "rng", "last_loss"):
        assert_same_tensors(a[key], b[key], key)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (
        tmp_path / "b" / "metrics.jsonl"
    ).read_text()


@pytest.mark.slow
def test_sigterm_commits_a_checkpoint_exits_75_and_resumes(tmp_path):
    """SIGTERM, twice, to the whole process group (as torchrun, Slurm and timeout send it),
    with data workers: the step finishes, a checkpoint is committed, exit status 75."""
    data = small(steps=100000, checkpoint_every=10**6, workers=2)
    recipe = write_recipe(tmp_path / "recipe.yaml", data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", "train", str(recipe), "--out", str(tmp_path / "b"),
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    metrics = tmp_path / "b" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text()) < 2000):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # twice: still one clean stop
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted at step" in stderr and "committed" in stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr
    stopped = final_state(tmp_path / "b")["step"]
    assert stopped > 0 and ckpt.committed_steps(tmp_path / "b") == [stopped]
    lines = metrics.read_text().splitlines()
    assert json.loads(lines[-1])["step"] == stopped
    more = zoo_cli("train", str(recipe), "--out", str(tmp_path / "b"), "--resume",
                   "--stop-after", "5", "--no-progress")  # fmt: skip
    assert more.returncode == 0 and f"stopped at step {stopped + 5}" in more.stdout, more.stderr


# ----------------------------------------------------------------------------- faults
def test_out_dir_holding_a_run_is_refused(tmp_path):
    recipe = validate_recipe(small(steps=5))
    train(recipe, tmp_path / "run", progress=False)
    before = sorted(p.name for p in (tmp_path / "run").rglob("*"))
    with pytest.raises(RunExistsError, match="--resume"):
        train(recipe, tmp_path / "run", progress=False)
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == before
    with pytest.raises(ConfigError, match=r"train\.steps: 5 -> 6"):
        train(validate_recipe(small(steps=6)), tmp_path / "run", resume=True, progress=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": {"stpes": 3}}, "train.stpes: unknown key"),
        ({"dataset": 7}, "dataset: Input should be a valid string"),
        ({"colour": "red"}, "colour: unknown key"),
    ],
)
def test_recipe_errors_name_the_key(tmp_path, change, message):
    data = small()
    for key, value in change.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    with pytest.raises(ConfigError) as info:
        load_recipe(write_recipe(tmp_path / "r.yaml", data))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_cli_set_overrides_and_bad_recipe_exit_codes(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", small(steps=6))
    bad = zoo_cli("train", str(recipe), "--out", str(tmp_path / "x"), "--set", "train.stepz=4")
    assert bad.returncode == 1 and "train.stepz: unknown key" in bad.stderr
    assert not (tmp_path / "x").exists()
    short = zoo_cli("train", str(recipe), "--out", str(tmp_path / "x"), "--set", "train.steps=3")
    assert short.returncode == 1
    assert "schedule.warmup_steps exceeds train.steps" in short.stderr
    ok = zoo_cli("train", str(recipe), "--out", str(tmp_path / "y"), "--set", "train.steps=7",
                 "--no-progress")  # fmt: skip
    assert ok.returncode == 0 and "trained 7 steps" in ok.stdout, ok.stderr
    again = zoo_cli("train", str(recipe), "--out", str(tmp_path / "y"))
    assert again.returncode == 1 and "already holds a run" in again.stderr


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    recipe = validate_recipe(small(steps=30, checkpoint_every=10))
    real = ckpt.atomic_write_bytes
    writes = []

    def full_on_second_checkpoint(path, data):
        writes.append(path.name)
        if path.name == "step-000000020.pt":
            with open(path.with_suffix(".partial"), "wb") as handle:
                handle.write(data[: len(data) // 2])  # what a full disk leaves behind
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", full_on_second_checkpoint)
    with pytest.raises(CheckpointError, match="No space left.*step 10 is intact"):
        train(recipe, tmp_path / "run", progress=False)
    state, path, skipped = ckpt.load_checkpoint(tmp_path / "run")
    assert state["step"] == 10 and path.name == "step-000000010.pt" and skipped == []
    monkeypatch.setattr(ckpt, "atomic_write_bytes", real)
    result = train(recipe, tmp_path / "run", resume=True, progress=False)
    assert result.status == "finished" and result.step == 30


def test_killed_mid_save_and_corrupt_newest_are_skipped(tmp_path):
    recipe = validate_recipe(small(steps=20, checkpoint_every=10))
    train(recipe, tmp_path / "run", progress=False)
    folder = tmp_path / "run" / "checkpoints"
    # A save killed before its commit: the file without a marker is ignored.
    (folder / "step-000000030.pt").write_bytes(b"half a checkpoint")
    # The newest committed one is corrupt: skipped, with the reason.
    newest = folder / "step-000000020.pt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    state, path, skipped = ckpt.load_checkpoint(tmp_path / "run")
    assert state["step"] == 10
    assert [(s.path.name, s.reason) for s in skipped] == [
        ("step-000000020.pt", "the file does not match its commit marker (corrupt or truncated)")
    ]


class NanAfter(GaussianMixture):
    architecture: ClassVar[str] = "gmm-nan-test"


class NanTrainer(GaussianMixtureTrainer):
    architecture: ClassVar[str] = "gmm-nan-test"

    def training_step(self, batch, step, optimizer):
        out = super().training_step(batch, step, optimizer)
        if step >= 12:
            out["loss"] = out["loss"] * float("nan")
        return out


class NanPlugin:
    @zoo_core.hookimpl
    def zoo_architectures(self):
        return {"gmm-nan-test": NanAfter}

    @zoo_core.hookimpl
    def zoo_trainers(self):
        return {"gmm-nan-test": NanTrainer}


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    pm = get_plugin_manager()
    pm.register(NanPlugin(), name="nan-test")
    try:
        data = small(steps=40, checkpoint_every=5, nan_patience=4)
        data["architecture"] = "gmm-nan-test"
        with pytest.raises(
            TrainingDivergedError,
            match=r"4 consecutive steps \(steps 13 to 16\); stopped; the last good checkpoint "
            r"is step 10 in",
        ):
            train(validate_recipe(data), tmp_path / "run", progress=False)
    finally:
        pm.unregister(name="nan-test")
    state, _, _ = ckpt.load_checkpoint(tmp_path / "run")
    assert state["step"] == 10  # step 15 was reached through skipped updates: not committed
    assert all(torch.isfinite(t).all() for t in state["modules"]["model"].values())


# ----------------------------------------------------------------------------- distributed
@pytest.mark.slow
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", small(steps=12, workers=1))
    one = zoo_cli("train", str(recipe), "--out", str(tmp_path / "one"), "--no-progress")
    assert one.returncode == 0, one.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    torchrun = Path(sys.executable).with_name("torchrun")

    def two_processes(out: str, *extra: str):
        result = subprocess.run(
            [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "zoo_core", "train",
             str(recipe), "--out", str(tmp_path / out), "--no-progress", *extra],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]

    two_processes("two")
    a, b = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    for part in ("modules", "ema"):
        for name in a[part] if part == "ema" else a[part]["model"]:
            x = a[part][name] if part == "ema" else a[part]["model"][name]
            y = b[part][name] if part == "ema" else b[part]["model"][name]
            assert torch.allclose(x, y, atol=1e-5), (part, name)
    # Resume works the same under torchrun: stop at 5, resume, equal to the straight run.
    two_processes("resumed", "--stop-after", "5")
    two_processes("resumed", "--resume")
    assert_same_tensors(final_state(tmp_path / "two")["modules"],
                        final_state(tmp_path / "resumed")["modules"])  # fmt: skip
    losses = [json.loads(line)["loss"] for line in (tmp_path / "one" / "metrics.jsonl").open()]
    losses2 = [json.loads(line)["loss"] for line in (tmp_path / "two" / "metrics.jsonl").open()]
    # Logged metrics are averaged over the processes: the global batch's loss.
    assert losses2 == pytest.approx(losses, abs=1e-5)


@pytest.mark.slow
def test_killed_at_random_moments_always_leaves_a_resumable_run(tmp_path):
    """SIGKILL (no handler runs) at three moments of a run that checkpoints every step, so
    that kills land mid-save: every time the newest committed checkpoint loads, and the run
    resumes and finishes."""
    import random

    recipe = write_recipe(tmp_path / "recipe.yaml", small(steps=100000, checkpoint_every=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    out = tmp_path / "run"
    rng = random.Random(0)
    seen = []
    for attempt in range(3):
        args = ["train", str(recipe), "--out", str(out), "--no-progress"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoo_core", *args, *(["--resume"] if attempt else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        deadline = time.time() + 120
        start = seen[-1] if seen else 0
        while time.time() < deadline and (ckpt.committed_steps(out) or [0])[0] < start + 5:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=60)
        state, path, skipped = ckpt.load_checkpoint(out)
        assert state is not None and skipped == [], skipped
        assert state["step"] > start
        seen.append(state["step"])
    finish = zoo_cli("train", str(recipe), "--out", str(out), "--resume", "--stop-after", "3",
                     "--no-progress")  # fmt: skip
    assert finish.returncode == 0 and f"stopped at step {seen[-1] + 3}" in finish.stdout
    # What the kills left half-written is gone once a checkpoint is committed again.
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left == [
        f"step-{s:09d}.{x}" for s in (seen[-1] + 2, seen[-1] + 3) for x in ("commit", "pt")
    ]


@pytest.mark.slow
def test_missing_dataset_is_one_line_naming_where_it_looked(tmp_path):
    data = small()
    data["dataset"] = "mnist"
    recipe = write_recipe(tmp_path / "recipe.yaml", data)
    result = zoo_cli("train", str(recipe), "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "mnist" in result.stderr and "ZOO_DATA_DIR" in result.stderr
    assert not (tmp_path / "run").exists()


def test_resume_after_a_corrupt_newest_keeps_what_it_writes(tmp_path):
    recipe = validate_recipe(small(steps=40, checkpoint_every=20, keep_last=1))
    train(recipe, tmp_path / "run", stop_after=20, progress=False)
    folder = tmp_path / "run" / "checkpoints"
    newest = folder / "step-000000020.pt"
    data = bytearray(newest.read_bytes())
    data[100] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="no checkpoint .* is usable"):
        train(recipe, tmp_path / "run", resume=True, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == [
        "step-000000020.commit.bad", "step-000000020.pt.bad"
    ]  # fmt: skip
    # With an intact older one: the corrupt newest is set aside (it used to outrank, and so
    # prune, every checkpoint the resumed run wrote) and new checkpoints stay.
    fresh = validate_recipe(small(steps=40, checkpoint_every=10, keep_last=2))
    train(fresh, tmp_path / "b", stop_after=20, progress=False)
    bad = tmp_path / "b" / "checkpoints" / "step-000000020.pt"
    bad.write_bytes(bad.read_bytes()[:-10])
    result = train(fresh, tmp_path / "b", resume=True, stop_after=5, progress=False)
    assert result.status == "stopped" and result.step == 15
    assert result.skipped_checkpoints == [
        "step-000000020.pt: the file does not match its commit marker (corrupt or truncated)"
    ]
    assert ckpt.committed_steps(tmp_path / "b") == [15, 10]
    assert (tmp_path / "b" / "checkpoints" / "step-000000020.pt.bad").exists()


def test_resuming_a_finished_run_reports_it(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", small(steps=6))
    assert zoo_cli("train", str(recipe), "--out", str(tmp_path / "r")).returncode == 0
    again = zoo_cli("train", str(recipe), "--out", str(tmp_path / "r"), "--resume")
    assert again.returncode == 0, again.stderr
    assert "trained 6 steps; final loss" in again.stdout and "n/a" not in again.stdout


class NanGrad(GaussianMixture):
    architecture: ClassVar[str] = "gmm-nangrad-test"


class NanGradTrainer(GaussianMixtureTrainer):
    architecture: ClassVar[str] = "gmm-nangrad-test"

    def training_step(self, batch, step, optimizer):
        out = super().training_step(batch, step, optimizer)
        if step >= 6:  # a finite loss whose gradient is not: sqrt at 0
            out["loss"] = out["loss"] + torch.sqrt(self.model.logits[0] * 0)
        return out


class TwoOptimizers(GaussianMixture):
    architecture: ClassVar[str] = "gmm-two-test"


class TwoOptimizerTrainer(GaussianMixtureTrainer):
    architecture: ClassVar[str] = "gmm-two-test"
    optimizers: ClassVar[tuple[str, ...]] = ("means", "scales")

    def parameters(self, optimizer):
        return [self.model.means] if optimizer == "means" else [self.model.log_scales]


class Summarized(GaussianMixture):
    architecture: ClassVar[str] = "gmm-summary-test"


class SummaryTrainer(GaussianMixtureTrainer):
    architecture: ClassVar[str] = "gmm-summary-test"

    def summary(self, records):
        return {"records": len(records), "steps": [r["step"] for r in records],
                "warnings": ["a warning the card lists"]}  # fmt: skip


class TestPlugin:
    @zoo_core.hookimpl
    def zoo_architectures(self):
        return {"gmm-nangrad-test": NanGrad, "gmm-two-test": TwoOptimizers,
                "gmm-summary-test": Summarized}  # fmt: skip

    @zoo_core.hookimpl
    def zoo_trainers(self):
        return {"gmm-nangrad-test": NanGradTrainer, "gmm-two-test": TwoOptimizerTrainer,
                "gmm-summary-test": SummaryTrainer}  # fmt: skip


@pytest.fixture
def test_architectures():
    pm = get_plugin_manager()
    pm.register(TestPlugin(), name="training-tests")
    yield
    pm.unregister(name="training-tests")


def test_non_finite_gradient_is_a_skipped_step(tmp_path, test_architectures):
    data = small(steps=20, checkpoint_every=5, nan_patience=3)
    data["architecture"] = "gmm-nangrad-test"
    with pytest.raises(TrainingDivergedError, match=r"steps 7 to 9\); stopped; .* step 5 in"):
        train(validate_recipe(data), tmp_path / "run", progress=False)
    state, _, _ = ckpt.load_checkpoint(tmp_path / "run")
    assert state["step"] == 5
    assert all(torch.isfinite(t).all() for t in state["modules"]["model"].values())


def test_several_optimizers_with_their_own_cadence_and_schedule(tmp_path, test_architectures):
    data = small(steps=12, checkpoint_every=1, keep_last=20, ema=None,
                 schedule={"warmup_steps": 0, "decay": "linear", "min_lr_ratio": 0.0})  # fmt: skip
    data["architecture"] = "gmm-two-test"
    data["train"]["optimizers"] = {
        "means": {"name": "sgd", "lr": 0.1},
        "scales": {"name": "sgd", "lr": 0.05, "every": 4, "grad_clip": 1e-3},
    }
    train(validate_recipe(data), tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    for record in records:
        step = record["step"] - 1  # the step index the update ran at
        assert record["means/lr"] == pytest.approx(0.1 * (1 - step / 12))
        if step % 4 == 0:  # the schedule follows the global step, whatever the cadence
            assert record["scales/lr"] == pytest.approx(0.05 * (1 - step / 12))
        else:
            assert "scales/lr" not in record
    states = {s: torch.load(ckpt._paths(tmp_path / "run", s)[0], weights_only=True)
              for s in range(1, 13)}  # fmt: skip
    for step in range(2, 13):
        before = states[step - 1]["modules"]["model"]["log_scales"]
        after = states[step]["modules"]["model"]["log_scales"]
        if (step - 1) % 4:
            assert torch.equal(before, after)  # not due: untouched
        else:  # clipped: SGD moves by at most lr * clip
            assert 0 < (after - before).norm() <= 0.05 * 1e-3 * 1.0001


def test_a_run_directory_in_use_is_refused(tmp_path):
    from zoo_core.training.loop import _RunLock

    lock = _RunLock(tmp_path / "run")
    try:
        with pytest.raises(RunExistsError, match="in use by another zoo train"):
            train(validate_recipe(small(steps=6)), tmp_path / "run", progress=False)
    finally:
        lock.release()


@pytest.mark.parametrize(
    ("train_keys", "message"),
    [
        ({"device": "cuda"}, "CUDA is not available"),
        ({"device": "banana"}, "invalid device"),
        ({"seed": -1}, "train.seed"),
        ({"batch_size": 10**7}, "exceeds the dataset"),
        ({"optimizers": {"model": {"betas": [1.5, 0.9]}}}, "train.optimizers.model.betas.0"),
    ],
)
def test_bad_settings_are_typed_errors_before_anything_is_written(tmp_path, train_keys, message):
    with pytest.raises(ConfigError, match=message):
        train(validate_recipe(small(**train_keys)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_trainers_summary_goes_into_training_json_and_the_card(tmp_path, test_architectures):
    data = small(steps=6, checkpoint_every=2, log_every=2)
    data["architecture"] = "gmm-summary-test"
    recipe = validate_recipe(data)
    train(recipe, tmp_path / "run", progress=False, stop_after=4)  # resumed: records kept
    result = train(recipe, tmp_path / "run", progress=False, resume=True)
    training = json.loads((result.model_dir / "training.json").read_text())
    assert training["diagnostics"] == {"records": 3, "steps": [2, 4, 6],
                                       "warnings": ["a warning the card lists"]}  # fmt: skip
    readme = (result.model_dir / "README.md").read_text()
    assert "- records: 3" in readme and "**warning**: a warning the card lists" in readme
    plain = train(validate_recipe(small(steps=6)), tmp_path / "plain", progress=False)
    assert "diagnostics" not in json.loads((plain.model_dir / "training.json").read_text())
