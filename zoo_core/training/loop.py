"""The shared training loop: every family trains through it, writing only ``training_step``.

Output directory of a run::

    recipe.yaml            the recipe, as validated
    metrics.jsonl          one JSON record every ``log_every`` steps (rank 0)
    checkpoints/           step-<n>.pt + step-<n>.commit (see checkpoint.py)
    samples/               step-<n>.png (or .txt) every ``sample_every`` steps
    model/                 at the end: save_pretrained of the EMA model, with its card

A resumed run is bit-identical on the CPU to an uninterrupted one: the data order is a
function of (seed, epoch, position), and the checkpoint holds every RNG state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import platform
import random
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from zoo_core._io import atomic_write_bytes
from zoo_core.catalog import architecture_class, trainer_class
from zoo_core.data import Dataset, load_dataset
from zoo_core.distributed import Distributed
from zoo_core.errors import (
    CheckpointError,
    ConfigError,
    RunExistsError,
    TrainingDivergedError,
    TrainingError,
)
from zoo_core.generator import validate_config
from zoo_core.outputs import WRITERS, save_samples
from zoo_core.training.batches import BatchOrder, TensorBatches, collate
from zoo_core.training.checkpoint import (
    committed_steps,
    load_checkpoint,
    quarantine,
    save_checkpoint,
)
from zoo_core.training.config import Recipe, TrainConfig, validate_recipe
from zoo_core.training.optim import Ema, build_optimizer, learning_rate
from zoo_core.validation import one_line

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 75  # SIGTERM: the current step finished and a checkpoint was committed
RUN_FILES = ("recipe.yaml", "metrics.jsonl", "checkpoints")


@dataclass
class TrainResult:
    """What a call of :func:`train` did."""

    status: str  # "finished", "stopped" (stop_after reached) or "interrupted" (SIGTERM)
    step: int
    out: Path
    final_loss: float | None = None
    model_dir: Path | None = None
    skipped_checkpoints: list[str] = field(default_factory=list)
    checkpoint_step: int | None = None  # the newest checkpoint committed (None: none)


# ----------------------------------------------------------------------------- pieces
class _StepModule(nn.Module):
    """Holds the trainer's modules, so DistributedDataParallel sees one module whose
    forward is the training step."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = [trainer]  # a list: not registered as a submodule
        self.parts = nn.ModuleDict(trainer.modules())

    def forward(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        return self.trainer[0].training_step(batch, step, optimizer)


class _StopSignal:
    """SIGTERM finishes the current step, then commits a checkpoint and exits."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopSignal:
        with contextlib.suppress(ValueError):  # not the main thread: no handler
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            log.warning("SIGTERM again: already stopping; the checkpoint is being committed")
            return
        self.requested = True
        log.warning("SIGTERM: finishing this step, then committing a checkpoint")

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            # Once stopping, a later SIGTERM must not kill the exit that follows.
            signal.signal(signal.SIGTERM, signal.SIG_IGN if self.requested else self._previous)


def _ignore_stop_signals(worker_id: int) -> None:
    """Data workers leave SIGTERM/SIGINT to the main process, which stops cleanly (a
    process-group signal from torchrun, Slurm or timeout reaches the workers too)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _RunLock:
    """An exclusive lock on a run directory for the life of a call (two writers would
    interleave metrics and prune each other's checkpoints)."""

    def __init__(self, out: Path):
        import fcntl

        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = out.parent / f".{out.name}.lock"
        self.handle = self.path.open("a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise RunExistsError(
                f"{out} is in use by another zoo train process; wait for it or choose another --out"
            ) from None

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self.handle.close()


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise TrainingError(f"cannot write {path} ({exc.strerror or exc})") from None


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- the loop
def train(
    recipe: Recipe,
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``recipe`` into ``out``.

    Args:
        recipe: the validated recipe.
        out: the run directory; one holding another run is refused unless ``resume``.
        resume: continue from the newest committed checkpoint in ``out`` (the recipe must be
            the one the run started with).
        stop_after: run at most this many steps in this call, then commit a checkpoint
            (status ``stopped``); ``None`` runs to ``train.steps``.
        progress: show a progress bar (rank 0).

    Raises:
        RunExistsError: ``out`` holds another run and ``resume`` is off.
        ConfigError: the recipe does not fit the model, trainer or data.
        CheckpointError: no usable checkpoint to resume from.
        TrainingDivergedError: the loss or gradients stayed non-finite.
    """
    out = Path(out)
    threads = torch.get_num_threads()
    if recipe.train.threads is not None:
        torch.set_num_threads(recipe.train.threads)
    dist = Distributed.from_environment(recipe.train.device)
    try:
        return _Run(recipe, out, dist, resume, stop_after, progress).run()
    finally:
        dist.close()
        torch.set_num_threads(threads)


class _Run:
    def __init__(self, recipe, out, dist, resume, stop_after, progress):
        self.recipe, self.out, self.dist = recipe, out, dist
        self.cfg: TrainConfig = recipe.train
        self.resume, self.stop_after = resume, stop_after
        self.progress = progress and dist.is_main
        self.device = dist.device
        self.skipped: list[str] = []
        self.nan_run, self.last_good_step, self.wall_before = 0, 0, 0.0
        self.last_loss: float | None = None

    # --------------------------------------------------------------- set-up
    def _check_out_dir(self) -> dict[str, Any] | None:
        present = [name for name in RUN_FILES if (self.out / name).exists()]
        if present and not self.resume:
            raise RunExistsError(
                f"{self.out} already holds a run ({', '.join(present)}); pass --resume to "
                f"continue it, or choose another --out"
            )
        if not self.resume:
            return None
        had_checkpoints = bool(committed_steps(self.out))
        state, path, skipped = load_checkpoint(self.out)
        self.skipped = [f"{s.path.name}: {s.reason}" for s in skipped]
        if skipped:
            quarantine(skipped)  # out of the way of pruning and of later resumes
        if state is None and had_checkpoints:
            raise CheckpointError(
                f"--resume: no checkpoint in {self.out / 'checkpoints'} is usable "
                f"({'; '.join(self.skipped)}); the files were renamed *.bad"
            )
        if state is not None:
            saved = validate_recipe(state["recipe"], f"the checkpoint {path.name}")
            if saved != self.recipe:
                raise ConfigError(
                    f"--resume: the recipe differs from the one {self.out} was started with "
                    f"({_diff(saved, self.recipe)}); resume with the same recipe"
                )
            log.info("resuming %s from %s", self.out, path.name)
        return state

    def _build(self) -> None:
        recipe, cfg = self.recipe, self.cfg
        # Each process its own stream; the model is the same everywhere (DDP broadcasts
        # rank 0's parameters when it wraps them).
        _seed_everything(cfg.seed + self.dist.rank)
        trainer_cls = trainer_class(recipe.architecture)
        model_cls = trainer_cls.model_class or architecture_class(recipe.architecture)
        trainer_config = _validate_trainer_config(trainer_cls, recipe.trainer)
        unknown = set(cfg.optimizers) - set(trainer_cls.optimizers)
        missing = set(trainer_cls.optimizers) - set(cfg.optimizers)
        if unknown or missing:
            raise ConfigError(
                f"train.optimizers must name exactly {list(trainer_cls.optimizers)} for "
                f"{recipe.architecture!r} (unknown: {sorted(unknown)}, missing: {sorted(missing)})"
            )
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA device; use bf16 on the CPU")
        self.model = model_cls(validate_config(model_cls, recipe.config))
        self.trainer = trainer_cls(self.model, trainer_config)
        self.step_module = _StepModule(self.trainer).to(self.device)
        self.ddp = self.dist.wrap(self.step_module, find_unused=len(cfg.optimizers) > 1)
        self.optimizers = {
            name: build_optimizer(name, self.trainer.parameters(name), cfg.optimizers[name])
            for name in trainer_cls.optimizers
        }
        self.rate = learning_rate(cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
        self.ema = Ema(self.model, cfg.ema.decay, cfg.ema.start) if cfg.ema else None
        # Rank 0 loads (and, where allowed, downloads) first; its failure stops every rank.
        self.data = self.dist.first_on_main(lambda: load_dataset(recipe.dataset, recipe.split))
        examples = self.trainer.dataset(self.data)
        self.examples = TensorBatches(examples) if isinstance(examples, Dataset) else examples
        self._order(0)  # a batch the data cannot give fails now, before anything is written

    def _order(self, start: int) -> Iterable[list[Any]]:
        shape = (len(self.examples), self.cfg.batch_size, self.cfg.seed, start,
                 self.dist.rank, self.dist.world_size)  # fmt: skip
        order = self.trainer.batch_order(*shape)
        return BatchOrder(*shape) if order is None else order

    def _loader(self, start: int):
        loader = torch.utils.data.DataLoader(
            self.examples,
            batch_sampler=self._order(start),
            num_workers=self.cfg.workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            # Its own generator: the workers' base seed must not draw from the global RNG,
            # which the checkpoint restores (a new iterator after resume would shift it).
            generator=torch.Generator().manual_seed(self.cfg.seed),
            worker_init_fn=_ignore_stop_signals,
        )
        return iter(loader)

    # --------------------------------------------------------------- state
    def _state(self, step: int, wall: float, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "step": step,
            "wall_time": wall,
            "recipe": self.recipe.model_dump(mode="json"),
            "dataset": {
                "name": self.recipe.dataset,
                "fingerprint": self.data.fingerprint,
                "files": dict(self.data.files),
            },  # fmt: skip
            "modules": {k: m.state_dict() for k, m in self.trainer.modules().items()},
            "ema": self.ema.model.state_dict() if self.ema else None,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng,  # one per process
            "last_loss": self.last_loss,
        }

    def _restore(self, state: dict[str, Any]) -> int:
        if state["dataset"]["fingerprint"] != self.data.fingerprint:
            raise CheckpointError(
                f"the dataset {self.recipe.dataset!r} changed since the checkpoint was written "
                f"(fingerprint {state['dataset']['fingerprint'][:12]} vs "
                f"{self.data.fingerprint[:12]}); resume with the same data"
            )
        if len(state["rng"]) != self.dist.world_size:
            raise CheckpointError(
                f"the checkpoint was written by {len(state['rng'])} process(es); resume it with "
                f"as many (this run has {self.dist.world_size})"
            )
        for name, module in self.trainer.modules().items():
            module.load_state_dict(state["modules"][name])
        if self.ema:
            self.ema.model.load_state_dict(state["ema"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"][self.dist.rank])
        self.last_good_step = state["step"]
        self.last_loss = state["last_loss"]
        self.wall_before = state["wall_time"]
        return state["step"]

    # --------------------------------------------------------------- run
    def run(self) -> TrainResult:
        lock = _RunLock(self.out) if self.dist.is_main else None
        try:
            state = self.dist.first_on_main(self._check_out_dir, share=True)
            self._build()
            step = self._restore(state) if state is not None else 0
            if self.dist.is_main:
                self.out.mkdir(parents=True, exist_ok=True)
                self._write_recipe()
                self.metrics = _Metrics(self.out, step)
            end = self.cfg.steps
            if self.stop_after is not None:
                end = min(end, step + self.stop_after)
            try:
                return self._loop(step, end)
            finally:
                if self.dist.is_main:
                    self.metrics.close()
        finally:
            if lock is not None:
                lock.release()

    def _write_recipe(self) -> None:
        import yaml

        text = yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)
        _write(self.out / "recipe.yaml", text.encode())

    def _loop(self, start: int, end: int) -> TrainResult:
        cfg = self.cfg
        started = time.perf_counter()
        bar = _progress(self.progress, start, cfg.steps)
        step, status, committed = start, "finished", None
        batches = self._loader(start)
        with _StopSignal() as stop:
            try:
                while step < end:
                    record = self._step(next(batches), step)
                    step += 1
                    if record is not None:
                        self.last_loss = record["loss"]
                    if self.dist.is_main:
                        self._report(step, record, bar)
                    stopping = self.dist.any(stop.requested)
                    if step % cfg.checkpoint_every == 0 or step == end or stopping:
                        committed = self._checkpoint(step, started) or committed
                    if stopping:
                        status = "interrupted"
                        break
            finally:
                del batches  # shut the workers down before anything else
                bar.close()
            if status != "interrupted" and step < cfg.steps:
                status = "stopped"
            result = TrainResult(status, step, self.out, self.last_loss, None, self.skipped)
            result.checkpoint_step = committed if committed is not None else (
                self.last_good_step or None
            )  # fmt: skip
            if status == "finished" and self.dist.is_main:
                result.model_dir = self._export(step, started)
        return result

    def _report(self, step: int, record: dict[str, float] | None, bar) -> None:
        cfg = self.cfg
        if step % cfg.log_every == 0 or step == cfg.steps:
            self.metrics.write({"step": step, **(record or {"skipped": True})})
        bar.update(1)
        if record is not None:
            bar.set_postfix(loss=f"{record['loss']:.4g}")
        if cfg.sample_every and step % cfg.sample_every == 0:
            self._sample_grid(step)

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _step(self, batch: Any, step: int) -> dict[str, float] | None:
        """One step: each due optimizer in order. Returns the metrics, or None when the step
        was skipped because a loss or a gradient was not finite."""
        batch = _to(batch, self.device)
        record: dict[str, float] = {}
        finite = True
        for name in self.trainer.optimizers:
            if step % self.cfg.optimizers[name].every == 0:
                finite = self._update(name, batch, step, record)
                if not finite:
                    break
        self.scaler.update()  # once per step, after every optimizer it stepped (fp16 only)
        if not finite:
            self._non_finite(step)
            return None
        self.nan_run = 0
        if self.ema:
            self.ema.update(self.model, step)
        # `loss` sums the losses of the optimizers stepped (one optimizer: its loss).
        record["loss"] = sum(v for k, v in record.items() if k.endswith("/loss"))
        return self.dist.mean(record)

    def _update(self, name: str, batch: Any, step: int, record: dict[str, float]) -> bool:
        cfg = self.cfg.optimizers[name]
        optimizer = self.optimizers[name]
        lr, momentum = self.rate(step, cfg.lr)  # a function of the step: exact on resume
        for group in optimizer.param_groups:
            group["lr"] = lr
            if momentum is not None and "betas" in group:
                group["betas"] = (momentum, *group["betas"][1:])
            elif momentum is not None:
                group["momentum"] = momentum
        optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.ddp(batch, step, name)
        loss = out["loss"]
        if not self.dist.all_finite(loss.detach()):
            optimizer.zero_grad(set_to_none=True)
            return False
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)  # also detects non-finite gradients
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_(params, cfg.grad_clip, norm)
        if not self.dist.all_finite(norm) and not self.scaler.is_enabled():
            optimizer.zero_grad(set_to_none=True)
            return False  # fp16's scaler skips such a step itself (and lowers its scale)
        self.scaler.step(optimizer)
        for key, value in out.items():
            record[f"{name}/{key}"] = float(value.detach() if torch.is_tensor(value) else value)
        record[f"{name}/grad_norm"] = float(norm)
        record[f"{name}/lr"] = lr
        return True

    def _non_finite(self, step: int) -> None:
        # Steps are numbered from 1 in messages, metrics and checkpoints (the count done).
        self.nan_run += 1
        log.warning("step %d: non-finite loss or gradient, update skipped (%d in a row)",
                    step + 1, self.nan_run)  # fmt: skip
        if self.nan_run >= self.cfg.nan_patience:
            kept = (
                f"the last good checkpoint is step {self.last_good_step} in "
                f"{self.out / 'checkpoints'}" if self.last_good_step else "no checkpoint yet"
            )  # fmt: skip
            raise TrainingDivergedError(
                f"the loss or its gradient was not finite for {self.nan_run} consecutive steps "
                f"(steps {step + 2 - self.nan_run} to {step + 1}); stopped; {kept}"
            )

    def _checkpoint(self, step: int, started: float) -> int | None:
        """Commit a checkpoint of ``step`` unless the state came through skipped steps."""
        if self.nan_run:
            return None  # never commit a state reached through skipped, non-finite steps
        wall = self.wall_before + time.perf_counter() - started
        rng = self.dist.gather_object(_rng_state())
        if self.dist.is_main:
            save_checkpoint(self.out, step, self._state(step, wall, rng), self.cfg.keep_last)
        self.dist.barrier()
        self.last_good_step = step
        return step

    def _sample_grid(self, step: int) -> None:
        model = self.ema.model if self.ema else self.model
        folder = self.out / "samples"
        folder.mkdir(exist_ok=True)
        suffix = WRITERS[model.modality][0]
        was_training = model.training
        model.eval()
        samples = model.sample(self.cfg.sample_count, seed=0)
        model.train(was_training)
        save_samples(samples, folder / f"step-{step:09d}{suffix}", modality=model.modality,
                     sample_rate=model.sample_rate)  # fmt: skip

    def _export(self, step: int, started: float) -> Path:
        model = self.ema.model if self.ema else self.model
        wall = self.wall_before + time.perf_counter() - started
        training = {
            "recipe": self.recipe.model_dump(mode="json"),
            "dataset": self.recipe.dataset,
            "dataset_fingerprint": self.data.fingerprint,
            "steps": step,
            "wall_time_s": round(wall, 3),
            "hardware": _hardware(self.device, self.dist.world_size),
            "final_loss": self.last_loss,
            "weights": "ema" if self.ema else "raw",
        }
        diagnostics = self.trainer.summary(_read_records(self.out / "metrics.jsonl"))
        if diagnostics:
            training["diagnostics"] = diagnostics
        try:
            return self.trainer.export(model, self.out / "model", training)
        except OSError as exc:
            raise TrainingError(
                f"cannot write the trained model to {self.out / 'model'} ({exc.strerror or exc});"
                f" the last checkpoint (step {step}) is intact: free space and --resume"
            ) from None


# ----------------------------------------------------------------------------- helpers
class _Metrics:
    """metrics.jsonl, cut back on resume to the records up to the checkpoint's step (a line
    torn by a kill is dropped)."""

    def __init__(self, out: Path, step: int):
        self.path = out / "metrics.jsonl"
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= step]
            _write(self.path, "".join(line + "\n" for line in kept).encode())
        self.handle = self.path.open("a", encoding="utf-8")
        self.tensorboard = _tensorboard(out, step)

    def write(self, record: dict[str, Any]) -> None:
        try:
            self.handle.write(json.dumps(record) + "\n")
            self.handle.flush()
        except OSError as exc:
            raise TrainingError(f"cannot write {self.path} ({exc.strerror or exc})") from None
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def _step_of(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # torn or foreign: dropped


def _tensorboard(out: Path, step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    # purge_step: events past the checkpoint (from before a resume) are dropped.
    return SummaryWriter(str(out / "tensorboard"), purge_step=step or None)


def _progress(enabled: bool, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="step", dynamic_ncols=True)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def _hardware(device: torch.device, world: int) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return f"{world} x {device.type} ({name or platform.machine()}), torch {torch.__version__}"


def _validate_trainer_config(trainer_cls, data: dict[str, Any]):
    try:
        return trainer_cls.Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"recipe: {one_line(exc, prefix='trainer.')}") from None


def _diff(a: Recipe, b: Recipe) -> str:
    def flat(data: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(data, dict):
            items: dict[str, Any] = {}
            for key, value in data.items():
                items.update(flat(value, f"{prefix}{key}."))
            return items
        return {prefix.rstrip("."): data}

    fa, fb = flat(a.model_dump(mode="json")), flat(b.model_dump(mode="json"))
    keys = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
    return ", ".join(f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in keys[:5])
