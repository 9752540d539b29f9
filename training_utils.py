"""Helpers shared by the three training scripts: seeding, RNG state, atomic checkpoints that load
without running code, CSV metric logs, device choice and one-line errors for bad input."""
from __future__ import annotations

import argparse
import csv
import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch
from numpy.core.multiarray import _reconstruct  # importable without warning in numpy 1 and 2 (old pickles)

from disentanglement_utils import METRICS
from io_utils import atomic_write, die  # noqa: F401  (torch-free; imported from here by the training scripts)

# Checkpoints written before the RNG states became lists hold numpy's MT19937 key, a uint32 ndarray:
# the only globals a checkpoint of ours ever contained. numpy 1 and numpy 2 name its helper differently.
LEGACY_CHECKPOINT_GLOBALS = [(_reconstruct, "numpy.core.multiarray._reconstruct"),
                             (_reconstruct, "numpy._core.multiarray._reconstruct"),
                             np.ndarray, np.dtype, type(np.dtype(np.uint32))]


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, refused by the safe loader or does not fit the model."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """Every RNG the scripts use, so a resumed run draws the same numbers as an uninterrupted one. Lists,
    numbers, strings and tensors only: a weights-only `torch.load` reads them back."""
    version, internal, gauss_next = random.getstate()
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = {"python": [version, list(internal), gauss_next],
             "numpy": [name, key.tolist(), pos, has_gauss, cached_gaussian], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore a `get_rng_state` state; also the tuples (and numpy key array) of older checkpoints."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save `obj` to `path` atomically (a checkpoint is never half-written)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """A checkpoint written by `atomic_save`, read by the weights-only unpickler of `torch.load`: a file
    that refers to any code (other than the numpy RNG key of older checkpoints) is refused, not run.
    Raises CheckpointError for a missing, corrupt or refused file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(LEGACY_CHECKPOINT_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, AttributeError,
            IndexError) as e:
        reason = ": ".join(filter(None, [type(e).__name__, load_error_reason(str(e))]))
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safe checkpoint of this project, "
                              f"so it is not loaded ({reason})") from None


def fit_state_dict(state: dict, model: torch.nn.Module) -> dict:
    """`state` as `model.load_state_dict` wants it, also when laid out as the original writes it
    (github.com/brendel-group/cl-ica): "module." (DataParallel) and "encoder." (KITTI's BetaVAE_H)
    prefixes dropped, SoftclipLayer's `max_abs_bound` named `b`, RescaleLayer's radius of shape (1,)
    reshaped; where the names still differ, tensors are paired in order (both are in registration
    order). Entries the original never saved (fixed radii and bounds, the radius of the 3DIdent periodic
    sphere) keep the model's values. Raises CheckpointError when the tensors do not fit."""
    target = model.state_dict()
    renamed = {}
    for key, value in state.items():
        parts = key.removeprefix("module.").removeprefix("encoder.").split(".")
        renamed[".".join(parts[:-1] + ["b" if parts[-1] == "max_abs_bound" else parts[-1]])] = value
    if not set(renamed) <= set(target):
        if len(renamed) > len(target):
            raise CheckpointError(f"the checkpoint holds {len(renamed)} tensors, this model {len(target)}")
        renamed = dict(zip(target, renamed.values()))
    for key, value in renamed.items():
        if value.numel() != target[key].numel():
            raise CheckpointError(f"{key} has shape {tuple(value.shape)} in the checkpoint, "
                                  f"{tuple(target[key].shape)} in this model")
    missing = [key for key in target if key not in renamed and key.rsplit(".", 1)[-1] not in ("r", "b")]
    if missing:
        raise CheckpointError(f"the checkpoint lacks {missing[0]} (and {len(missing) - 1} more)")
    return {**target, **{key: value.reshape(target[key].shape) for key, value in renamed.items()}}


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> int | None:
    """Load the weights of a checkpoint of ours ({"model": ...}), of the original's KITTI solver
    ({"iter", "model_states": {"net": ...}}) or a state dict as the original's main_mlp (g.pth,
    sup_f.pth, unsup_f.pth) and main_3dident write it; returns the step it was saved at (None if unknown).
    Raises CheckpointError for a missing, corrupt, refused or mismatched file."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} holds no weights")
    state = ckpt.get("model") or ckpt.get("model_states", {}).get("net") or ckpt
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no weights")
    try:
        model.load_state_dict(fit_state_dict(state, model))
    except (CheckpointError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}") from None
    return ckpt.get("step", ckpt.get("iter"))


def load_error_reason(message: str) -> str:
    """A `torch.load` error message in one line: the weights-only unpickler's own reason, without the
    advice around it (to load unsafely, or to allow-list what it refused), else the whole message."""
    reason = message.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
    return " ".join(reason.split(" Please use")[0].split())


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str):
    """The autocast context of mixed precision `amp` (none | bf16 | fp16) on `device`; a no-op for none."""
    return torch.autocast(device.type, dtype=AMP_DTYPES.get(amp, torch.bfloat16), enabled=amp in AMP_DTYPES)


def grad_scaler(amp: str) -> torch.amp.GradScaler | None:
    """The loss scaler fp16 needs (its gradients underflow without one); bf16 and float32 need none."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" else None


def allow_tf32(device: torch.device) -> None:
    """Let float32 matrix products and convolutions use TF32 tensor cores on CUDA (Ampere and later)."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    """--metrics NAME...: scores of disentanglement_utils.METRICS that a script adds to its final scores."""
    parser.add_argument("--metrics", nargs="+", default=[], choices=list(METRICS), metavar="NAME",
                        help="Also give the final scores these (none by default; docs/metrics.md): "
                             f"{', '.join(METRICS)}. Each takes under 10 s on 10 000 samples on one core.")


def select_device(use_cuda: bool) -> torch.device:
    """CUDA when asked for and present, else the CPU; says which."""
    if use_cuda and not torch.cuda.is_available():
        print("CUDA requested but not available: using the CPU")
    device = torch.device("cuda" if use_cuda and torch.cuda.is_available() else "cpu")
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    return device


class CsvLogger:
    """Appends one row per `log` call to a CSV file and counts them in `rows`. A resumed run passes
    the `rows` saved in its checkpoint as `resume_rows`: those rows are kept, later ones (logged
    after the checkpoint, and logged again by the resumed run) are dropped."""

    def __init__(self, path: str | os.PathLike, fieldnames: list[str], resume_rows: int | None = None):
        self.path, self.fieldnames = Path(path), list(fieldnames)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_rows and self.path.is_file():
            with open(self.path, newline="") as f:
                kept = list(csv.DictReader(f))[:resume_rows]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.fieldnames)
            writer.writeheader()
            writer.writerows(kept)
        self.rows = len(kept)

    def log(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fieldnames).writerow(row)
        self.rows += 1
