"""Contrastive training of the KITTI Masks encoder, with resumable checkpoints (the paper's KITTI Masks experiment).

One step encodes an interleaved batch of pairs, takes the even rows as anchors f(x_t), the odd rows
as positives f(x_t+k) and the anchors rolled by one as negatives, and minimises LpSimCLRLoss.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from losses import CLLoss
from training_utils import CheckpointError, atomic_save, get_rng_state, load_checkpoint, set_rng_state

KEEP_EVERY = 50_000  # besides "last", keep a checkpoint named by the iteration every KEEP_EVERY steps


def contrastive_loss(encoder: nn.Module, loss_fn: CLLoss, images: torch.Tensor) -> torch.Tensor:
    """Mean loss of a batch [x_t^0, x_t+k^0, x_t^1, …]; negatives of anchor i: every rolled anchor."""
    codes = encoder(images)
    anchors, positives = codes[::2], codes[1::2]
    loss, _, _ = loss_fn(None, None, None, anchors, positives, torch.roll(anchors, 1, 0))
    return loss


def endless(loader: Iterable) -> Iterator:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


class Solver:
    """Encoder, optimiser and iteration count, saved to and resumed from `ckpt_dir`."""

    def __init__(self, encoder: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: CLLoss,
                 device: torch.device, ckpt_dir: str):
        self.encoder, self.optimizer, self.loss_fn = encoder, optimizer, loss_fn
        self.device, self.ckpt_dir = device, ckpt_dir
        self.iteration = 0

    def save(self, name: str) -> None:
        state = {"iteration": self.iteration, "model": self.encoder.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "rng": get_rng_state()}
        atomic_save(state, os.path.join(self.ckpt_dir, name))

    def load(self, path: str, with_training_state: bool = True) -> None:
        """Restore the encoder (and, for resuming, optimiser, iteration and RNG state) from `path` through
        the safe loader; raises CheckpointError for a missing, corrupt, refused or mismatched checkpoint."""
        state = load_checkpoint(path, map_location=self.device)
        try:
            self.encoder.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit this encoder (check --z-dim and --box-norm): "
                                  f"{str(e).splitlines()[0]}") from None
        self.iteration = state["iteration"]
        if with_training_state:
            self.optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"])

    def step(self, images: torch.Tensor) -> torch.Tensor:
        """One Adam step on a batch; returns the detached loss (no device sync)."""
        loss = contrastive_loss(self.encoder, self.loss_fn, images.to(self.device, non_blocking=True))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def train(self, loader: Iterable, max_iter: int, log_step: int, save_step: int,
              log_fn: Callable[[int, float], None]) -> None:
        """Train until `max_iter`; every `log_step` pass the mean loss since the last log to `log_fn`;
        save "last" every `save_step` and at the end, and "<iteration>" every KEEP_EVERY."""
        self.encoder.train()
        running, count = torch.zeros((), device=self.device), 0
        with tqdm(total=max_iter, initial=self.iteration, desc="train", unit="it", mininterval=1.0) as bar:
            for images, _ in itertools.islice(endless(loader), max(0, max_iter - self.iteration)):
                running, count = running + self.step(images), count + 1
                self.iteration += 1
                bar.update()
                if self.iteration % log_step == 0:
                    mean_loss = running.item() / count
                    log_fn(self.iteration, mean_loss)
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    running, count = torch.zeros((), device=self.device), 0
                if self.iteration % save_step == 0 or self.iteration == max_iter:
                    self.save("last")
                if self.iteration % KEEP_EVERY == 0:
                    self.save(str(self.iteration))
