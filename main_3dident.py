"""3DIdent experiments (paper §5): learn an encoder f of rendered scenes and score how
well f inverts the rendering, i.e. how close h = f∘g is to an affine map / a permutation.

Modes:
- supervised:   regress the latents of each image (--supervised-loss mse | r2);
- unsupervised: InfoNCE on positive pairs (x, x̃): z ~ marginal, z̃ ~ conditional(z), both snapped
  to their nearest renders (datasets/threedident_dataset.py); negatives are the batch rolled by one;
- test:         score an encoder (--load-model) on every image of --offline-dataset, in order.
Scores, every --n-log-steps on --n-eval-samples of the training stream and in test mode on the whole
folder: R² of a linear fit f(x) → z (fitted on one half, scored on the other), MCC (Pearson, best
one-to-one matching), per-dimension MSE of f(x) to z and of the linear fit to z.
Scale-out: `torchrun --nproc_per_node N main_3dident.py ...` trains with DistributedDataParallel;
each rank draws its own pairs (seed + rank) and rank 0 prints metrics over all ranks' samples.
With --output-dir DIR the run folder DIR holds args.json, metrics.csv, checkpoint.pt (every
--save-every steps, else every --n-log-steps) and final_scores.json; --resume continues it.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import disentanglement_utils
import encoders
import invertible_network_utils
import losses
import training_loop
from datasets.threedident_dataset import (DatasetFormatError, SequentialThreeDIdentDataset, ThreeDIdentDataset,
                                          pair_loader)
from datasets.threedident_latents import LatentLayout, build_latent_space, select_columns
from training_loop import RunFolder, Schedule, Stream, Task
from training_utils import CheckpointError, atomic_save, die, load_weights, select_device, set_seed

LP_EXPONENTS = {"l1": 1, "l2": 2, "l3": 3}
CONSTRAINTS = ("None", "fix", "learnable")
RESUME_FREE = ("resume", "workers", "no_cuda", "faiss_omp_threads", "output_dir", "save_model", "save_every",
               "load_model", "offline_dataset")  # flags a resumed run may change


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Disentanglement with InfoNCE/Contrastive Learning - 3DIdent")
    add = parser.add_argument
    add("--batch-size", type=int, default=512, help="Pairs per step and rank (paper: 512).")
    add("--n-eval-samples", type=int, default=4096, help="Samples behind each logged score (4096).")
    add("--lr", type=float, default=1e-4, help="Learning rate (1e-4 with adam).")
    add("--optimizer", default="adam", choices=("adam", "sgd"), help="Optimizer (adam).")
    add("--iterations", type=int, default=30000, help="How long to train the model")
    add("--n-log-steps", type=int, default=100, help="How often to calculate scores and print them")
    add("--load-model", default=None, help="Path from where to load the model")
    add("--save-model", default=None, help="Path where to save the model")
    add("--save-every", type=int, default=None,
        help="After how many steps to save the model (will always be saved at the end)")
    add("--no-cuda", action="store_true", help="Use the CPU even if a GPU is present.")
    add("--position-only", action="store_true", help="Use only the position latents (columns 0-2).")
    add("--rotation-and-color-only", action="store_true", help="Use all latents but the position.")
    add("--rotation-only", action="store_true",
        help="Use object rotation and spotlight angle (non-periodic data only).")
    add("--color-only", action="store_true", help="Use the three hues (non-periodic data only).")
    add("--no-spotlight-position", action="store_true", help="Drop the spotlight angle (non-periodic only).")
    add("--no-spotlight-color", action="store_true", help="Drop the spotlight hue (non-periodic only).")
    add("--no-spotlight", action="store_true", help="Both of the above.")
    add("--non-periodic-rotation-and-color", action="store_true",
        help="Rotations and hues live in a box (the released 10-column data; recommended) instead of on S^7.")
    add("--dummy-mixing", action="store_true",
        help="Replace the images by g(z), g an invertible MLP, and f by an MLP (fast sanity run, no images).")
    add("--identity-solution", action="store_true",
        help="f is the identity (with --dummy-mixing: how entangled g(z) is).")
    add("--identity-mixing-and-solution", action="store_true", help="h(z) = z: the scores of a perfect f.")
    add("--approximate-dataset-nn-search", action="store_true",
        help="Snap latents with a faiss IVF1024_HNSW32 index (nprobe 10, efSearch 8) instead of exact search.")
    add("--offline-dataset", required=True, help="3DIdent folder: raw_latents.npy and images/.")
    add("--faiss-omp-threads", type=int, default=16, help="OpenMP threads of faiss per data worker (16).")
    add("--box-constraint", default=None, choices=CONSTRAINTS,
        help="Put the non-periodic outputs in a box (fix | learnable bound); paper: learnable.")
    add("--sphere-constraint", default=None, choices=CONSTRAINTS,
        help="Put the non-periodic outputs on a sphere (fix | learnable radius).")
    add("--workers", type=int, default=0, help="Number of workers to use (0=#cpus)")
    add("--mode", default="supervised", choices=("supervised", "unsupervised", "test"), help="What to run.")
    add("--supervised-loss", default="mse", choices=("mse", "r2"), help="Loss of the supervised mode (mse).")
    add("--unsupervised-loss", default="l2", choices=("l1", "l2", "l3", "vmf"),
        help="InfoNCE similarity: -||.||_p^p (l1/l2/l3) or cosine (vmf); match --non-periodical-conditional.")
    add("--non-periodical-conditional", default="l2", choices=("l1", "l2", "l3"),
        help="Conditional of the box latents: Laplace, Normal, generalized normal p=3 (l2).")
    add("--sigma", type=float, default=0.1, help="Sigma of the conditional distribution (for vMF: 1/kappa)")
    add("--encoder", default="rn18", choices=("rn18", "rn50", "rn101", "rn151", "rn152"),
        help="torchvision ResNet-18/50/101/152 (rn151 = rn152 = ResNet-152); rn18 as in the paper.")
    add("--seed", type=int, default=0, help="Random seed (rank r of a torchrun job uses seed + r for its pairs).")
    add("--output-dir", default=None,
        help="Run folder: args.json, metrics.csv, checkpoint.pt, final_scores.json (none if unset).")
    add("--resume", action="store_true", help="Continue <output-dir>/checkpoint.pt (without it, a run starts afresh).")
    return parser


def check_args(args: argparse.Namespace) -> LatentLayout:
    """Normalise the flags; a bad combination is a one-line error. Returns the latent columns used."""
    args.box_constraint = None if args.box_constraint == "None" else args.box_constraint
    args.sphere_constraint = None if args.sphere_constraint == "None" else args.sphere_constraint
    if args.no_spotlight:
        args.no_spotlight_position = args.no_spotlight_color = True
    for flag, low in {"batch_size": 2, "n_eval_samples": 4, "n_log_steps": 1, "faiss_omp_threads": 1}.items():
        if getattr(args, flag) < low:
            die(f"--{flag.replace('_', '-')} must be >= {low}, got {getattr(args, flag)}")
    if args.iterations < 0 or args.workers < 0 or not args.sigma > 0 or not args.lr > 0:
        die("--iterations and --workers must be >= 0, --sigma and --lr > 0")
    if args.save_every is not None and (args.save_every <= 0 or args.save_model is None):
        die("--save-every needs a positive value and --save-model")
    if args.resume and not args.output_dir:
        die("--resume needs --output-dir")
    if args.box_constraint and args.sphere_constraint:
        die("use at most one of --box-constraint and --sphere-constraint")
    if args.identity_solution and not args.dummy_mixing:
        die("--identity-solution needs --dummy-mixing (an identity encoder of images has no latent-sized output)")
    try:
        return select_columns(args.non_periodic_rotation_and_color, args.position_only, args.rotation_and_color_only,
                              args.rotation_only, args.color_only, args.no_spotlight_position, args.no_spotlight_color)
    except ValueError as e:
        die(str(e))


class SplitNormalization(nn.Module):
    """Output normalisation per latent block: the first `n_box` outputs by `box`, the rest by `sphere`."""

    def __init__(self, n_box: int, box: nn.Module, sphere: nn.Module):
        super().__init__()
        self.n_box, self.box, self.sphere = n_box, box, sphere

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.box(x[:, :self.n_box]), self.sphere(x[:, self.n_box:])], 1)


def output_normalization(args: argparse.Namespace, layout: LatentLayout) -> nn.Module:
    """--box-constraint / --sphere-constraint for the box latents, a learnable sphere for the S^7 ones."""
    if args.box_constraint:
        box = encoders.BoxNormalization(layout.n_box, learnable=args.box_constraint == "learnable")
    elif args.sphere_constraint:
        box = encoders.SphereNormalization(learnable=args.sphere_constraint == "learnable")
    else:
        box = nn.Identity()
    sphere = encoders.SphereNormalization(learnable=True)
    if not layout.n_sphere or not layout.n_box:
        return sphere if layout.n_sphere else box
    return SplitNormalization(layout.n_box, box, sphere)


def build_encoder(args: argparse.Namespace, layout: LatentLayout) -> nn.Module:
    """f: identity, the MLP of the synthetic experiments (--dummy-mixing) or a ResNet, then the normalisation."""
    if args.identity_solution or args.identity_mixing_and_solution:
        return nn.Identity()
    n = layout.dim
    if args.dummy_mixing:
        body = encoders.get_mlp(n, n, [10 * n, 50 * n, 50 * n, 50 * n, 50 * n, 10 * n])
    else:
        body = encoders.get_resnet_encoder(args.encoder, n)
    return nn.Sequential(body, output_normalization(args, layout))


def contrastive_loss(args: argparse.Namespace, layout: LatentLayout) -> Callable:
    """InfoNCE per block (paper §5.3): Lp or cosine on the box outputs, dot product on the S^7 outputs, summed."""
    box_similarity = "cosine" if args.unsupervised_loss == "vmf" else LP_EXPONENTS[args.unsupervised_loss]
    blocks = [(box_similarity, slice(0, layout.n_box))] if layout.n_box else []
    blocks += [("dot", slice(layout.n_box, None))] if layout.n_sphere else []

    def loss(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        h3 = torch.roll(h1, 1, 0)
        return sum(losses.info_nce(h1[:, s], h2[:, s], h3[:, s], similarity).mean() for similarity, s in blocks)

    return loss


def supervised_loss(kind: str) -> Callable:
    """loss(f(x), z): mean squared error or negative R²."""
    if kind == "mse":
        return nn.MSELoss()
    r2 = losses.R2Loss(reduction="mean", mode="negative_r2")
    return lambda hz, z: r2(z, hz)[0]


def make_step_loss(args: argparse.Namespace, layout: LatentLayout, f: nn.Module, mix: Callable,
                   device: torch.device) -> Callable:
    """The training loss of one batch (z, z̃, x, x̃) of the pair stream, for --mode."""
    if args.mode == "unsupervised":
        pair_loss = contrastive_loss(args, layout)

        def step_loss(batch) -> torch.Tensor:
            z, z_tilde, x, x_tilde = batch
            return pair_loss(f(mix(z, x)), f(mix(z_tilde, x_tilde)))
    else:
        target_loss = supervised_loss(args.supervised_loss)

        def step_loss(batch) -> torch.Tensor:
            z, _, x, _ = batch
            return target_loss(f(mix(z, x)), z.to(device))
    return step_loss


def build_mixing(args: argparse.Namespace, n: int, device: torch.device, verbose: bool = True) -> Callable:
    """What f sees for latents z and images x: x, g(z) (--dummy-mixing) or z (--identity-mixing-and-solution)."""
    if args.identity_mixing_and_solution:
        return lambda z, x: z.to(device)
    if args.dummy_mixing:
        g = invertible_network_utils.construct_invertible_mlp(n, n_layers=3, n_iter_cond_thresh=25000,
                                                              cond_thresh_ratio=0.0, act_fct="leaky_relu",
                                                              verbose=verbose).to(device)
        return lambda z, x: g(z.to(device))
    return lambda z, x: x.to(device, non_blocking=True)


def init_distributed(use_cuda: bool) -> tuple[int, int, torch.device]:
    """(rank, world size, device); under torchrun joins the process group (nccl on GPUs, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, select_device(use_cuda)
    use_cuda = use_cuda and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if not use_cuda:
        return dist.get_rank(), world, torch.device("cpu")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    return dist.get_rank(), world, torch.device("cuda", local_rank)


def all_ranks(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor over the ranks of a torchrun job (itself when alone)."""
    if not dist.is_initialized():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def encode(f: nn.Module, mix: Callable, batches: Iterable, n_samples: int | None = None):
    """(z, f(mix(z, x))) on the CPU for the (z, x) batches, the first `n_samples` (all if None); f in eval mode."""
    was_training = f.training
    f.eval()
    zs, hzs, count = [], [], 0
    for z, x in batches:
        zs.append(z)
        hzs.append(f(mix(z, x)).float().cpu())
        count += len(z)
        if n_samples is not None and count >= n_samples:
            break
    f.train(was_training)
    return torch.cat(zs)[:n_samples], torch.cat(hzs)[:n_samples]


def scores(z: torch.Tensor, hz: torch.Tensor) -> dict:
    """R² (split in halves), MCC, per-dimension MSE of hz and of the linear fit (paper §5.3)."""
    (r2, _), (z_test, prediction) = disentanglement_utils.linear_disentanglement(z, hz, mode="r2",
                                                                                  train_test_split=True)
    (mcc, _), _ = disentanglement_utils.permutation_disentanglement(z, hz, mode="pearson", solver="munkres",
                                                                    rescaling=True)
    mse = (z - hz).square().mean(0).numpy()
    return {"r2": r2, "mcc": mcc, "mse": mse, "lin_mse": ((z_test - prediction) ** 2).mean(0)}


def format_scores(s: dict) -> str:
    fmt = {"float_kind": lambda v: f"{v:.3f}"}
    return (f"R2 {s['r2']:.4f} | MCC {s['mcc']:.4f} | MSE {np.array2string(s['mse'], formatter=fmt)} | "
            f"lin. MSE {np.array2string(s['lin_mse'], formatter=fmt)}")


class ThreeDIdentTask(Task):
    """The pair stream (its position is resumable state), the loss of --mode, scores over all ranks, and
    the --save-model / --save-every model files."""

    def __init__(self, args: argparse.Namespace, f: nn.Module, step_loss: Callable, stream: Stream,
                 evaluate: Callable):
        self.args, self.model, self.step_loss, self.stream, self.scores = args, unwrap(f), step_loss, stream, evaluate

    def next_batch(self):
        return next(self.stream)

    def loss(self, batch) -> torch.Tensor:
        return self.step_loss(batch)

    def evaluate(self) -> dict | None:
        s = self.scores()
        return s and {"r2": s["r2"], "mcc": s["mcc"], "mse": rounded(s["mse"]), "lin_mse": rounded(s["lin_mse"])}

    def final_scores(self) -> dict:
        return self.evaluate() or {}

    def state_dict(self) -> dict:
        return {"batches": self.stream.position}

    def load_state_dict(self, state: dict) -> None:
        self.stream.seek(state["batches"])

    def describe(self, scores: dict) -> str:
        return f" | MSE {scores['mse']} | lin. MSE {scores['lin_mse']}"

    def save_snapshot(self, step: int, final: bool) -> None:
        every = self.args.save_every
        if final and self.args.save_model:
            save(self.model, step, self.args, self.args.save_model)
        elif every and step and step % every == 0:
            save(self.model, step, self.args, f"{self.args.save_model}.iteration_{step}")


def rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in values]


def save(f: nn.Module, step: int, args: argparse.Namespace, path: str) -> None:
    atomic_save({"model": f.state_dict(), "step": step, "args": vars(args)}, path)
    print(f"model saved: {path}")


def load(f: nn.Module, path: str) -> None:
    """Weights of ours or of the original (a raw state dict, "module." prefixes after DataParallel)."""
    try:
        step = load_weights(f, path)
    except CheckpointError as e:
        die(str(e))
    print(f"model loaded: {path} (step {step})")


def read_resume(args: argparse.Namespace) -> dict | None:
    """<output-dir>/checkpoint.pt with --resume, checked against the flags."""
    if not args.resume:
        return None
    try:
        ckpt = training_loop.read_resume_checkpoint(os.path.join(args.output_dir, "checkpoint.pt"))
        training_loop.check_same_flags(ckpt["args"], vars(args), training_loop.flag_names(get_args_parser()),
                                       RESUME_FREE)
    except CheckpointError as e:
        die(str(e))
    return ckpt


def unwrap(f: nn.Module) -> nn.Module:
    return f.module if isinstance(f, DistributedDataParallel) else f


def open_dataset(args: argparse.Namespace, layout: LatentLayout):
    """The in-order test set (test mode) or the pair stream, checked; a bad folder is a one-line error."""
    load_images = not (args.dummy_mixing or args.identity_mixing_and_solution)
    try:
        if args.mode == "test":
            return SequentialThreeDIdentDataset(args.offline_dataset, layout.columns, layout.file_width,
                                                load_images)
        latent_space = build_latent_space(layout, args.non_periodical_conditional, args.sigma)
        return ThreeDIdentDataset(args.offline_dataset, latent_space, args.batch_size, layout.columns,
                                  layout.file_width, args.approximate_dataset_nn_search, load_images,
                                  args.faiss_omp_threads, args.seed)
    except DatasetFormatError as e:
        die(str(e))


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    layout = check_args(args)
    data = open_dataset(args, layout)
    rank, world, device = init_distributed(not args.no_cuda and torch.cuda.is_available())
    if args.mode == "test" and world > 1:
        die("test mode runs in one process (start it without torchrun)")
    if world > 1:
        print(f"rank {rank}/{world}: pair stream seeded with {args.seed + rank}", flush=True)
    set_seed(args.seed)  # the same f and g on every rank
    if rank == 0:
        print(f"latents: columns {list(layout.columns)} ({layout.n_box} box, {layout.n_sphere} on S^7)")
    mix = build_mixing(args, layout.dim, device, verbose=rank == 0)
    f = build_encoder(args, layout).to(device)
    if args.load_model:
        load(f, args.load_model)
    workers = args.workers or os.cpu_count()
    if args.mode == "test":
        z, hz = encode(f, mix, DataLoader(data, batch_size=args.batch_size, num_workers=workers))
        print(f"test set: {len(z)} images, in order | {format_scores(scores(z, hz))}")
        return
    data.seed = args.seed + rank  # each rank its own pair stream
    stream = Stream(lambda position: iter(pair_loader(with_start(data, position), workers,
                                                      pin_memory=device.type == "cuda")))
    if world > 1 and any(p.requires_grad for p in f.parameters()):
        f = DistributedDataParallel(f, device_ids=[device.index] if device.type == "cuda" else None)
    step_loss = make_step_loss(args, layout, f, mix, device)
    n_local = -(-args.n_eval_samples // world)

    def evaluate() -> dict | None:
        z, hz = encode(f, mix, ((b[0], b[2]) for b in stream), n_local)
        z, hz = all_ranks(z), all_ranks(hz)
        return scores(z, hz) if rank == 0 else None

    params = [p for p in f.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD)(params, lr=args.lr) if params else None
    ckpt = read_resume(args)
    folder = None
    if args.output_dir and rank == 0:
        folder = RunFolder(args.output_dir, args, [*training_loop.COLUMNS, "mse", "lin_mse"], ckpt, device, world)
    schedule = Schedule(args.iterations + 1, args.n_log_steps, args.save_every or args.n_log_steps, first_update=1,
                        loss_window=args.n_log_steps)
    task = ThreeDIdentTask(args, f, step_loss, stream, evaluate)
    try:
        final = training_loop.fit(task, optimizer, schedule, folder, ckpt, main_process=rank == 0)
    except CheckpointError as e:
        die(str(e))
    if folder:
        folder.write_final_scores(final)
    if dist.is_initialized():
        dist.destroy_process_group()


def with_start(data: ThreeDIdentDataset, position: int) -> ThreeDIdentDataset:
    """The pair stream opened at batch `position` (the dataset is copied into the loader's workers)."""
    data.start = position
    return data


if __name__ == "__main__":
    main()
