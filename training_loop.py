"""The training loop of the three scripts and their common run folder (DINO's split: a script sets up,
this module trains; each script supplies only what is its own, as a `Task`).

`fit` owns stepping, the log cadence, the progress bar, metrics rows, timing, atomic checkpoints and
resuming. `RunFolder` is the folder every script writes: args.json (flags and environment),
metrics.csv (step, loss, mean_loss, r2, mcc, elapsed_s and the script's own columns), checkpoint.pt
(model, optimiser, step, every RNG, the data stream's position, args) and final_scores.json. A
resumed run ends with the same scores as the same run left alone (on the CPU, same seed).
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training_utils import (CheckpointError, CsvLogger, atomic_save, atomic_write, get_rng_state, load_checkpoint,
                            set_rng_state)

COLUMNS = ["step", "loss", "mean_loss", "r2", "mcc", "elapsed_s"]


class Task:
    """What a script supplies to `fit`: the model whose weights a checkpoint keeps, how to draw a batch,
    the loss of a batch and the scores. `label` prefixes the printed lines ("unsupervised ")."""

    model: nn.Module
    label: str = ""
    metrics: Sequence[str] = ()  # the --metrics its final scores include (disentanglement_utils.METRICS)

    def next_batch(self):
        raise NotImplementedError

    def loss(self, batch) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self) -> dict | None:
        """r2, mcc and the script's own metrics columns (None on the ranks of a job that do not log)."""
        raise NotImplementedError

    def final_scores(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """The script's own resumable state, e.g. the data stream's position."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def describe(self, scores: dict) -> str:
        """Text appended to a printed log line."""
        return ""

    def on_log(self, row: dict) -> None:
        """Called with each metrics row (e.g. for TensorBoard)."""

    def save_snapshot(self, step: int, final: bool) -> None:
        """The script's own model files (e.g. --save-every), after each step and at the end."""


@dataclass
class Schedule:
    """Steps 0 … steps−1; step s < first_update only scores (3DIdent and KITTI log the untrained model at
    step 0). Logs at every `log_every`-th step and the last; checkpoints every `checkpoint_every` and at the end."""

    steps: int
    log_every: int
    checkpoint_every: int
    first_update: int = 0
    loss_window: int = 100


class Stream:
    """An endless batch iterator that counts the batches it hands out: its position is resumable state.
    `make(position)` opens the data stream at a position; it is opened on the first batch."""

    def __init__(self, make: Callable[[int], Iterator], position: int = 0):
        self.make, self.position, self._it = make, position, None

    def __iter__(self) -> Stream:
        return self

    def __next__(self):
        if self._it is None:
            self._it = self.make(self.position)
        self.position += 1
        return next(self._it)

    def seek(self, position: int) -> None:
        self.position, self._it = position, None


def stream_seed(seed: int, position: int) -> int:
    """A 32-bit seed for batch `position` of a stream seeded with `seed` (independent across positions)."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """dest → the flag as spelled on the command line."""
    return {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings}


def check_same_flags(saved: dict, current: dict, flags: dict[str, str], free: tuple[str, ...] = ()) -> None:
    """Raise CheckpointError naming the flags (other than `free` ones) whose value differs from the run that
    wrote the checkpoint. Flags the checkpoint does not know (added since) are not compared."""
    def spell(name: str, value) -> str:
        if isinstance(value, bool):
            return flags[name] if value else f"no {flags[name]}"
        return f"{flags[name]} {value}"

    differ = [name for name in flags if name not in free and name in saved and saved[name] != current.get(name)]
    if differ:
        raise CheckpointError("checkpoint was trained with " + ", ".join(spell(n, saved[n]) for n in differ)
                              + ", this run has " + ", ".join(spell(n, current.get(n)) for n in differ))


def read_resume_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by `fit`, loaded safely; CheckpointError when missing, corrupt or of another kind."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or not {"model", "step", "args", "rng"} <= set(ckpt):
        raise CheckpointError(f"{path} is not a resumable checkpoint of this project")
    return ckpt


class RunFolder:
    """args.json, metrics.csv, checkpoint.pt and final_scores.json of one run. A resumed run passes its
    checkpoint: the metrics rows logged after it (logged again by the resumed run) are dropped. `inputs`:
    values the flags point to (e.g. the image statistics read from a file), recorded in args.json."""

    def __init__(self, path: str | os.PathLike, args: argparse.Namespace, columns: list[str],
                 resume: dict | None = None, device: torch.device | str = "cpu", world_size: int = 1,
                 inputs: dict | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.args = dict(vars(args))
        environment = {"git_commit": git_commit(), "torch": torch.__version__, "numpy": np.__version__,
                       "device": str(device), "world_size": world_size}
        record = {**self.args, "environment": environment, **({"inputs": inputs} if inputs else {})}
        (self.path / "args.json").write_text(json.dumps(record, indent=2))
        self.logger = CsvLogger(self.path / "metrics.csv", columns, resume["metrics_rows"] if resume else None)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def save(self, state: dict) -> None:
        atomic_save({**state, "args": self.args, "metrics_rows": self.logger.rows}, self.checkpoint_path)

    def write_final_scores(self, scores: dict) -> None:
        atomic_write(self.path / "final_scores.json", lambda f: f.write(json.dumps(scores, indent=2).encode()))


def restore(task: Task, optimizer: torch.optim.Optimizer | None, ckpt: dict,
            scaler: torch.amp.GradScaler | None = None) -> None:
    """Model, optimiser, loss scaler, the task's state and every RNG from a `fit` checkpoint."""
    try:
        task.model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint does not fit this model: {str(e).splitlines()[0]}") from None
    if optimizer is not None and ckpt.get("optimizer"):
        optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    task.load_state_dict(ckpt["data"])
    set_rng_state(ckpt["rng"])


def update(task: Task, optimizer: torch.optim.Optimizer | None,
           scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step on a fresh batch (the loss only, when nothing is trained), through the loss
    scaler of fp16 training if one is given; the detached loss."""
    loss = task.loss(task.next_batch())
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    return loss.detach()


def fit(task: Task, optimizer: torch.optim.Optimizer | None, schedule: Schedule, folder: RunFolder | None = None,
        resume: dict | None = None, main_process: bool = True, scaler: torch.amp.GradScaler | None = None) -> dict:
    """Train `task` from step 0, or from the checkpoint `resume`; returns `task.final_scores()`. Only the
    main process prints, logs and saves; every process evaluates (the scores may gather across ranks).
    `scaler`: the loss scaler of fp16 mixed precision (checkpointed with the optimiser)."""
    step, elapsed, losses = 0, 0.0, []
    if resume is not None:
        restore(task, optimizer, resume, scaler)
        if "final" in resume:
            return finished_scores(task, resume, folder if main_process else None)
        step, elapsed, losses = resume["step"], resume["elapsed"], resume["losses"]
    window = collections.deque(losses, maxlen=schedule.loss_window)
    start = time.perf_counter() - elapsed  # wall time summed over resumed runs

    def state(next_step: int) -> dict:
        return {"model": task.model.state_dict(), "optimizer": optimizer.state_dict() if optimizer else None,
                "scaler": scaler.state_dict() if scaler else None,
                "step": next_step, "elapsed": time.perf_counter() - start, "losses": [float(v) for v in window],
                "rng": get_rng_state(), "data": task.state_dict()}

    bar = tqdm(total=schedule.steps, initial=step, desc=task.label.strip() or "train", mininterval=1.0,
               disable=None if main_process else True)  # no bar when stdout is not a terminal
    for step in range(step, schedule.steps):
        if step >= schedule.first_update:
            window.append(update(task, optimizer, scaler))
        bar.update()
        last = step == schedule.steps - 1
        if step % schedule.log_every == 0 or last:
            scores = task.evaluate()
            if main_process:
                log(task, step, [float(v) for v in window], scores, time.perf_counter() - start, bar, folder)
        if main_process:
            task.save_snapshot(step, final=False)
            if folder and step % schedule.checkpoint_every == 0 and not last:
                folder.save(state(step + 1))
    bar.close()
    final = task.final_scores()
    if main_process:
        task.save_snapshot(schedule.steps - 1, final=True)
        if folder:
            folder.save({**state(schedule.steps), "final": final, "final_metrics": list(task.metrics)})
    return final


def finished_scores(task: Task, resume: dict, folder: RunFolder | None) -> dict:
    """The final scores of a finished run (its checkpoint `resume`, restored). --metrics it was not scored with
    (asked for since) are scored now, beside the stored scores, and kept in the checkpoint; the RNGs are left as
    the finished run left them (a next phase draws what it would have drawn)."""
    scored = resume.get("final_metrics", resume["args"].get("metrics", []))  # older checkpoints: the run's flags
    if set(task.metrics) <= set(scored):
        return resume["final"]
    rng = get_rng_state()
    final = {**task.final_scores(), **resume["final"]}
    set_rng_state(rng)
    if folder:
        folder.save({**resume, "final": final, "final_metrics": sorted({*scored, *task.metrics})})
    return final


def log(task: Task, step: int, losses: list[float], scores: dict, elapsed: float, bar: tqdm,
        folder: RunFolder | None) -> None:
    """Print a log line and append a metrics row."""
    loss, mean_loss = (losses[-1], sum(losses) / len(losses)) if losses else (math.nan, math.nan)
    bar.write(f"{task.label}step {step}: loss {loss:.4f} mean loss {mean_loss:.4f} R² {scores['r2']:.4f} "
              f"MCC {scores['mcc']:.4f}{task.describe(scores)}")
    bar.set_postfix(loss=f"{mean_loss:.4f}", r2=f"{scores['r2']:.3f}", mcc=f"{scores['mcc']:.3f}")
    row = {"step": step, "loss": loss, "mean_loss": mean_loss, "elapsed_s": round(elapsed, 2), **scores}
    task.on_log(row)
    if folder:
        folder.logger.log(row)
