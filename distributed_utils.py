"""Scale-out under torchrun (main_3dident): one global batch split evenly over the ranks, its encoded
parts gathered with their gradient, batch norm over the global batch. A job of W processes thus computes
the loss and the gradients of one process on the same global batch, as the original's DataParallel did
for the contrastive loss (github.com/brendel-group/cl-ica, main_3dident.py: all 512 pairs of a batch
are contrasted with each other, paper §5.3).

Gradient bookkeeping: every rank computes the same loss L of the gathered global batch; `gather`'s
backward sums ∂L/∂(gathered) over the ranks and keeps the local rows, so rank r back-propagates
W·∂L/∂h_r, and DistributedDataParallel's average over the W ranks gives ∂L/∂θ exactly.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from training_utils import select_device


def world_size() -> int:
    """Processes of the torchrun job (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_world_size() -> int:
    """Processes of the job on this machine (1 without torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def usable_cpus() -> int:
    """CPUs this process may run on: a SLURM job's allocation (or a taskset), not the node's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no CPU affinity
        return os.cpu_count() or 1


def backend_error(backend: str, use_cuda: bool) -> str | None:
    """Why the process-group `backend` (auto | nccl | gloo) cannot run here; None when it can."""
    if backend == "nccl" and (not use_cuda or torch.cuda.device_count() < local_world_size()):
        return (f"--dist-backend nccl needs one GPU per rank: {local_world_size()} ranks on this machine, "
                f"{torch.cuda.device_count() if use_cuda else 0} GPUs in use (use --dist-backend gloo)")
    return None


def init_distributed(use_cuda: bool, backend: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world size, device); under torchrun joins the process group (auto: nccl on GPUs, else gloo),
    rank r on GPU LOCAL_RANK."""
    world = world_size()
    if world == 1:
        return 0, 1, select_device(use_cuda)
    dist.init_process_group(("nccl" if use_cuda else "gloo") if backend == "auto" else backend)
    if not use_cuda:
        return dist.get_rank(), world, torch.device("cpu")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    return dist.get_rank(), world, torch.device("cuda", local_rank)


class _Gather(torch.autograd.Function):
    """All ranks' (n, …) tensors concatenated in rank order; backward: the summed gradient of the own rows."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        ctx.rows, ctx.rank = len(t), dist.get_rank()
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather(t: torch.Tensor) -> torch.Tensor:
    """`t` of every rank concatenated in rank order (the global batch), differentiable; `t` when alone."""
    return _Gather.apply(t) if dist.is_initialized() and dist.get_world_size() > 1 else t


def shard(batch_size: int, rank: int, world: int) -> slice:
    """Rank `rank`'s rows of a global batch of `batch_size` split evenly over `world` ranks."""
    if batch_size % world:
        raise ValueError(f"a batch of {batch_size} does not split evenly over {world} ranks")
    rows = batch_size // world
    return slice(rank * rows, (rank + 1) * rows)


class GatheredBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, for CPU (gloo) jobs, where
    torch's SyncBatchNorm does not run: each rank normalises the gathered activations and keeps its rows
    (W times the activation memory; CPU jobs are small). Evaluation and single processes: BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        rows, rank = len(x), dist.get_rank()
        return super().forward(gather(x))[rank * rows:(rank + 1) * rows]


def global_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` with every BatchNorm2d computing global-batch statistics: SyncBatchNorm on GPUs,
    `GatheredBatchNorm2d` on the CPU (same parameters, buffers and state-dict keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            gathered = GatheredBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                           child.track_running_stats).to(next(child.buffers()).device)
            gathered.load_state_dict(child.state_dict())
            setattr(model, name, gathered)
        else:
            global_batch_norm(child, device)
    return model
