"""What main_kitti brings to the shared training loop (paper §5.2; the original's kitti_masks/solver.py):
pair batches of its dataset, the loss of a batch, the SlowVAE-protocol scores, the model files.

The contrastive loss encodes an interleaved batch of pairs, takes the even rows as anchors f(x_t), the odd
rows as positives f(x_t+k) and the anchors rolled by one as negatives: the Lp InfoNCE (τ = 1). The SlowVAE
baseline's loss is kitti_masks.slowvae.batch_loss; main_kitti passes the one --model names.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

import losses
from kitti_masks.dataset import pair_batches
from kitti_masks.evaluation import evaluate_encoder
from training_loop import Stream, Task
from training_utils import atomic_save

KEEP_EVERY = 50_000  # besides "last", keep a model file named by the iteration every KEEP_EVERY steps


def contrastive_loss(encoder: nn.Module, images: torch.Tensor, p: float) -> torch.Tensor:
    """Mean loss of a batch [x_t^0, x_t+k^0, x_t^1, …]; negatives of anchor i: every rolled anchor."""
    codes = encoder(images)
    anchors, positives = codes[::2], codes[1::2]
    return losses.info_nce(anchors, positives, torch.roll(anchors, 1, 0), p, tau=1.0).mean()


class KittiTask(Task):
    """The model trained with `loss_fn` (a batch of interleaved pairs → scalar) on `PairSampler`'s stream;
    scores every log step; "last" (every --save-step and at the end) and "<iteration>" model files in
    `ckpt_dir` for --evaluate."""

    def __init__(self, model: nn.Module, dataset: Dataset, args: argparse.Namespace, device: torch.device,
                 ckpt_dir: str, loss_fn: Callable[[torch.Tensor], torch.Tensor],
                 on_log: Callable[[dict], None] | None = None):
        self.model, self.dataset, self.args, self.device, self.ckpt_dir = model, dataset, args, device, ckpt_dir
        self.loss_fn, self.metrics = loss_fn, args.metrics
        self.stream = Stream(lambda position: pair_batches(dataset, args.batch_size, args.num_workers, args.seed,
                                                           position, pin_memory=device.type == "cuda"))
        self.log_hook = on_log

    def next_batch(self) -> torch.Tensor:
        images, _ = next(self.stream)
        return images.to(self.device, non_blocking=True)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(images)

    def evaluate(self) -> dict:
        result = evaluate_encoder(self.model, self.dataset, self.device, seed=self.args.seed)
        return {"r2": result["r2"], "mcc": result["mcc"]}

    def final_scores(self) -> dict:
        return evaluate_encoder(self.model, self.dataset, self.device, seed=self.args.seed, extra=self.metrics)

    def state_dict(self) -> dict:
        return {"batches": self.stream.position}

    def load_state_dict(self, state: dict) -> None:
        self.stream.seek(state["batches"])

    def on_log(self, row: dict) -> None:
        if self.log_hook:
            self.log_hook(row)

    def save_snapshot(self, step: int, final: bool) -> None:
        names = (["last"] if final or (step and step % self.args.save_step == 0) else [])
        names += [str(step)] if step and step % KEEP_EVERY == 0 else []
        for name in names:
            atomic_save({"model": self.model.state_dict(), "step": step, "args": vars(self.args)},
                        os.path.join(self.ckpt_dir, name))
