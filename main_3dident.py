"""3DIdent experiments (paper §5): learn an encoder f of rendered scenes and score how
well f inverts the rendering, i.e. how close h = f∘g is to an affine map / a permutation.

Modes:
- supervised:   regress the latents of each image (--supervised-loss mse | r2);
- unsupervised: InfoNCE on positive pairs (x, x̃): z ~ marginal, z̃ ~ conditional(z), both snapped
  to their nearest renders (datasets/threedident_dataset.py), or with --pairs rendered exact pairs read from a
  pair folder (tools/3dident/render_pairs.py); negatives are the batch rolled by one;
- test:         score an encoder (--load-model) on every image of --offline-dataset, in order.
Scores, every --n-log-steps on --n-eval-samples of the training stream and in test mode on the whole
folder: R² of a linear fit f(x) → z (fitted on one half, scored on the other), MCC (Pearson, best
one-to-one matching), per-dimension MSE of f(x) to z and of the linear fit to z.
Scale-out: `torchrun --nproc_per_node N main_3dident.py ...` trains with DistributedDataParallel on
the global batch --batch-size, split evenly over the ranks (the original split it over GPUs with
DataParallel): the pairs come from one seeded global stream, every anchor is contrasted with the whole
global batch, batch norm uses its statistics, and the scores gather all ranks' samples, so a job gives
the same losses and scores on 1, 2 or 4 processes (distributed_utils.py). --amp bf16 | fp16 runs f
under autocast (the loss and the scores in float32); on CUDA the ResNets run channels_last with TF32.
Images come from the data workers as uint8 and are normalised on the device, per channel, with the released
statistics or (--image-normalisation folder) those of tools/3dident/image_stats.py's file (--image-stats);
with --image-cache the workers read them from a file of the decoded images (the same bytes, far fewer cores).
With --output-dir DIR the run folder DIR holds args.json, metrics.csv, checkpoint.pt (every
--save-every steps, else every --n-log-steps) and final_scores.json; --resume continues it.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import disentanglement_utils
import distributed_utils
import encoders
import invertible_network_utils
import losses
import training_loop
from datasets.threedident_dataset import (CACHE_FILE, IMAGE_MEAN, IMAGE_STD, STATS_FILE, DatasetFormatError,
                                          PairFolderDataset, SequentialThreeDIdentDataset, ThreeDIdentDataset,
                                          cache_bytes, normalise_images, pair_loader, read_image_stats)
from datasets.threedident_latents import LatentLayout, build_latent_space, select_columns
from training_loop import RunFolder, Schedule, Stream, Task
from distributed_utils import gather
from training_utils import (CheckpointError, add_metrics_argument, allow_tf32, atomic_save, autocast, die,
                            grad_scaler, load_weights, set_seed)

LP_EXPONENTS = {"l1": 1, "l2": 2, "l3": 3}
CONSTRAINTS = ("None", "fix", "learnable")
BASE_SCORES = ("r2", "mcc", "mse", "lin_mse", "r2_latents")  # `scores` without --metrics
RESUME_FREE = ("resume", "workers", "no_cuda", "faiss_omp_threads", "output_dir", "save_model", "save_every",
               "load_model", "offline_dataset", "image_stats", "dist_backend", "image_cache",
               "metrics")  # flags a resumed run may change


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Disentanglement with InfoNCE/Contrastive Learning - 3DIdent")
    add = parser.add_argument
    add("--batch-size", type=int, default=512,
        help="Pairs per step: the global batch, split evenly over the ranks under torchrun (paper: 512).")
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
    add("--offline-dataset", required=True,
        help="3DIdent folder: raw_latents.npy and images/ (with --pairs rendered: a pair folder).")
    add("--pairs", default="snapped", choices=("snapped", "rendered"),
        help="Positive pairs: snapped = z, z̃ ~ conditional(z) snapped to their nearest renders of --offline-dataset "
             "(the paper's; default, for the released data); rendered = exact pairs pre-rendered by "
             "tools/3dident/render_pairs.py into the pair folder --offline-dataset (pass its conditional and scale "
             "as --non-periodical-conditional and --sigma).")
    add("--image-normalisation", default="released", choices=("released", "folder"),
        help="Per-channel (x/255 - mean)/std of the images, on the device: released = the released 3DIdent "
             "statistics, mean (0.3292, 0.3278, 0.3215), std (0.0778, 0.0776, 0.0771) (recommended for the "
             "released data); folder = the statistics in --image-stats (recommended for folders rendered with "
             "tools/3dident, brighter: mean about 0.62-0.68, std about 0.21).")
    add("--image-stats", default=None, metavar="PATH",
        help=f"Statistics file read by --image-normalisation folder (default <offline-dataset>/{STATS_FILE}; "
             "written by tools/3dident/image_stats.py <dataset folder>). With --mode test pass the TRAINING "
             f"folder's file (<train folder>/{STATS_FILE}) so the encoder sees images normalised as in training.")
    add("--image-cache", action="store_true",
        help=f"Read the images from {CACHE_FILE}, beside images/ in each folder read: every image decoded once "
             f"(N x H x W x 3 bytes of disk: {cache_bytes(250000, 224) / 1e9:.1f} GB for the released 250 000 images "
             f"at 224 px, {cache_bytes(250000, 64) / 1e9:.1f} GB at 64 px), built on first use with a progress bar "
             "(resumable; rebuilt when the images or latents change) and memory-mapped by every data worker. The "
             "same batches as without it, with fewer workers (docs/benchmarks.md: 2 instead of 6-7 feed an rn18 step "
             "of 150 ms at batch 512); recommended when the disk has room (checked before building) and RAM for the "
             "page cache to hold the file.")
    add("--faiss-omp-threads", type=int, default=16, help="OpenMP threads of faiss per data worker (16).")
    add("--box-constraint", default=None, choices=CONSTRAINTS,
        help="Put the non-periodic outputs in a box (fix | learnable bound); paper: learnable.")
    add("--box-init", type=float, default=1.0,
        help="Initial side b of the box [0, b] of --box-constraint (1, as in the original).")
    add("--sphere-constraint", default=None, choices=CONSTRAINTS,
        help="Put the non-periodic outputs on a sphere (fix | learnable radius).")
    add("--workers", type=int, default=0,
        help="Data workers per rank (0 = the CPUs this process may use / ranks per machine); "
             "benchmarks/bench_3dident_loader.py sizes it (an rn18 step of 150 ms at batch 512 at 224 px: 2 with "
             "--image-cache, about 7 without). "
             "Runs without images (--dummy-mixing, --identity-*) read their pairs in the main process.")
    add("--mode", default="supervised", choices=("supervised", "unsupervised", "test"), help="What to run.")
    add("--supervised-loss", default="mse", choices=("mse", "r2"), help="Loss of the supervised mode (mse).")
    add("--unsupervised-loss", default="l2", choices=("l1", "l2", "l3", "vmf"),
        help="InfoNCE similarity: -||.||_p^p (l1/l2/l3) or cosine (vmf); match --non-periodical-conditional.")
    add("--non-periodical-conditional", default="l2", choices=("l1", "l2", "l3"),
        help="Conditional of the box latents: Laplace, Normal, generalized normal p=3 (l2).")
    add("--sigma", type=float, default=0.1, help="Sigma of the conditional distribution (for vMF: 1/kappa)")
    add("--tau", type=float, default=1.0,
        help="InfoNCE temperature (1 as in the paper; the CPU recipe: 0.05 for l2, 0.1 for l1, fitted to the spread "
             "of the snapped pairs in a box of side 1, docs/3dident.md, \"3DIdent at CPU scale\").")
    add("--encoder", default="rn18", choices=("rn18", "rn50", "rn101", "rn151", "rn152", "conv"),
        help="torchvision ResNet-18/50/101/152 (rn151 = rn152 = ResNet-152); rn18 as in the paper; conv: a "
             "5-layer convolutional net with global pooling, 4x fewer multiply-adds than rn18 (the CPU recipe, "
             "64-px renders).")
    add("--seed", type=int, default=0, help="Random seed (one global pair stream: the same for any number of ranks).")
    add("--amp", default="none", choices=("none", "bf16", "fp16"),
        help="Mixed precision of f: bf16 (recommended on GPUs since Ampere), fp16 (CUDA only, loss scaling) "
             "or none; the loss and the scores stay float32.")
    add("--dist-backend", default="auto", choices=("auto", "nccl", "gloo"),
        help="Process group under torchrun: auto = nccl on GPUs, gloo on the CPU.")
    add("--output-dir", default=None,
        help="Run folder: args.json, metrics.csv, checkpoint.pt, final_scores.json (none if unset).")
    add("--resume", action="store_true", help="Continue <output-dir>/checkpoint.pt (without it, a run starts afresh).")
    add_metrics_argument(parser)
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
    if args.iterations < 0 or args.workers < 0 or not min(args.sigma, args.lr, args.tau, args.box_init) > 0:
        die("--iterations and --workers must be >= 0; --sigma, --lr, --tau and --box-init > 0")
    if args.save_every is not None and (args.save_every <= 0 or args.save_model is None):
        die("--save-every needs a positive value and --save-model")
    if args.resume and not args.output_dir:
        die("--resume needs --output-dir")
    if args.pairs == "rendered" and args.mode == "test":
        die("--pairs rendered is for training; score with --mode test --offline-dataset <pair folder>/anchors")
    if args.box_constraint and args.sphere_constraint:
        die("use at most one of --box-constraint and --sphere-constraint")
    world, use_cuda = distributed_utils.world_size(), not args.no_cuda and torch.cuda.is_available()
    if args.batch_size % world:
        die(f"--batch-size {args.batch_size} is the global batch: it must divide evenly over the {world} ranks")
    if args.amp == "fp16" and not use_cuda:
        die("--amp fp16 needs CUDA (on the CPU use --amp bf16)")
    if distributed_utils.backend_error(args.dist_backend, use_cuda):
        die(distributed_utils.backend_error(args.dist_backend, use_cuda))
    if args.identity_solution and not args.dummy_mixing:
        die("--identity-solution needs --dummy-mixing (an identity encoder of images has no latent-sized output)")
    if args.image_stats and args.image_normalisation != "folder":
        die("--image-stats needs --image-normalisation folder")
    if args.image_normalisation == "folder" and not args.image_stats:
        args.image_stats = os.path.join(args.offline_dataset, STATS_FILE)  # args.json records the file read
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
        box = encoders.BoxNormalization(layout.n_box, args.box_init, learnable=args.box_constraint == "learnable")
    elif args.sphere_constraint:
        box = encoders.SphereNormalization(learnable=args.sphere_constraint == "learnable")
    else:
        box = nn.Identity()
    sphere = encoders.SphereNormalization(learnable=True)
    if not layout.n_sphere or not layout.n_box:
        return sphere if layout.n_sphere else box
    return SplitNormalization(layout.n_box, box, sphere)


def build_encoder(args: argparse.Namespace, layout: LatentLayout) -> nn.Module:
    """f: identity, the MLP of the synthetic experiments (--dummy-mixing), a ResNet or the small convolutional
    net (--encoder conv), then the normalisation."""
    if args.identity_solution or args.identity_mixing_and_solution:
        return nn.Identity()
    n = layout.dim
    if args.dummy_mixing:
        body = encoders.get_mlp(n, n, [10 * n, 50 * n, 50 * n, 50 * n, 50 * n, 10 * n])
    else:
        body = encoders.get_conv_encoder(n) if args.encoder == "conv" else encoders.get_resnet_encoder(args.encoder, n)
    return nn.Sequential(body, output_normalization(args, layout))


def contrastive_loss(args: argparse.Namespace, layout: LatentLayout) -> Callable:
    """InfoNCE per block (paper §5.3): Lp or cosine on the box outputs, dot product on the S^7 outputs, summed."""
    box_similarity = "cosine" if args.unsupervised_loss == "vmf" else LP_EXPONENTS[args.unsupervised_loss]
    blocks = [(box_similarity, slice(0, layout.n_box))] if layout.n_box else []
    blocks += [("dot", slice(layout.n_box, None))] if layout.n_sphere else []

    def loss(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        h3 = torch.roll(h1, 1, 0)
        return sum(losses.info_nce(h1[:, s], h2[:, s], h3[:, s], similarity, args.tau).mean()
                   for similarity, s in blocks)

    return loss


def supervised_loss(kind: str) -> Callable:
    """loss(f(x), z): mean squared error or negative R²."""
    if kind == "mse":
        return nn.MSELoss()
    r2 = losses.R2Loss(reduction="mean", mode="negative_r2")
    return lambda hz, z: r2(z, hz)[0]


def make_embed(f: nn.Module, mix: Callable, device: torch.device, amp: str) -> Callable:
    """(z, x) → f(mix(z, x)) in float32, f run under the autocast of --amp."""
    def embed(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return f(mix(z, x)).float()
    return embed


def make_step_loss(args: argparse.Namespace, layout: LatentLayout, embed: Callable, device: torch.device) -> Callable:
    """The training loss of one batch (z, z̃, x, x̃) of the pair stream, for --mode, on the global batch:
    under torchrun the encoded rows of all ranks are gathered (with the gradient of the own rows)."""
    if args.mode == "unsupervised":
        pair_loss = contrastive_loss(args, layout)

        def step_loss(batch) -> torch.Tensor:
            z, z_tilde, x, x_tilde = batch
            return pair_loss(gather(embed(z, x)), gather(embed(z_tilde, x_tilde)))
    else:
        target_loss = supervised_loss(args.supervised_loss)

        def step_loss(batch) -> torch.Tensor:
            z, _, x, _ = batch
            return target_loss(gather(embed(z, x)), gather(z.to(device)))
    return step_loss


def uses_images(args: argparse.Namespace) -> bool:
    """Whether f sees images (not g(z) or z: --dummy-mixing, --identity-mixing-and-solution)."""
    return not (args.dummy_mixing or args.identity_mixing_and_solution or args.identity_solution)


def data_workers(args: argparse.Namespace) -> int:
    """Data workers per rank: --workers, or (0) the CPUs this process may run on (`usable_cpus`: a job's
    allocation, not the node's count) shared by the ranks of the machine. None without images: workers decode
    images, and a spawned one costs seconds of start-up for a faiss search a batch."""
    if not uses_images(args):
        return 0
    return args.workers or max(1, distributed_utils.usable_cpus() // distributed_utils.local_world_size())


def memory_format(args: argparse.Namespace, device: torch.device) -> torch.memory_format:
    """channels_last for image encoders on CUDA (tensor-core convolutions) and for --encoder conv on the CPU
    (oneDNN's convolutions prefer it), else the default layout."""
    fast = device.type == "cuda" or args.encoder == "conv"
    return torch.channels_last if uses_images(args) and fast else torch.contiguous_format


def image_statistics(args: argparse.Namespace) -> tuple[Sequence[float], Sequence[float]]:
    """Per-channel (mean, std) the images are normalised with (paper §5.3): the released constants, or with
    --image-normalisation folder those of the --image-stats file (read only when f sees images); a missing or
    malformed file is a one-line error."""
    if args.image_normalisation == "released" or not uses_images(args):
        return IMAGE_MEAN, IMAGE_STD
    try:
        return read_image_stats(args.image_stats)
    except DatasetFormatError as e:
        die(str(e))


def build_mixing(args: argparse.Namespace, n: int, device: torch.device,
                 stats: tuple[Sequence[float], Sequence[float]], verbose: bool = True) -> Callable:
    """What f sees for latents z and images x: x normalised on `device` with `stats` = (mean, std) (uint8 →
    float32, paper §5.3), g(z) (--dummy-mixing) or z (--identity-mixing-and-solution)."""
    if args.identity_mixing_and_solution:
        return lambda z, x: z.to(device)
    if args.dummy_mixing:
        g = invertible_network_utils.construct_invertible_mlp(n, n_layers=3, n_iter_cond_thresh=25000,
                                                              cond_thresh_ratio=0.0, act_fct="leaky_relu",
                                                              verbose=verbose).to(device)
        return lambda z, x: g(z.to(device))
    layout = memory_format(args, device)
    mean, std = (torch.tensor(v, device=device) for v in stats)
    # uint8 images travel (4× fewer bytes than float32), then become float on the device in f's layout
    return lambda z, x: normalise_images(x.to(device, non_blocking=True, memory_format=layout), mean, std)


@torch.no_grad()
def encode(f: nn.Module, embed: Callable, batches: Iterable, n_samples: int | None = None):
    """(z, embed(z, x)) on the CPU for the (z, x) batches, the first `n_samples` (all if None), f in eval
    mode; under torchrun each batch is gathered from all ranks (in rank order: the global batch)."""
    was_training = f.training
    f.eval()
    zs, hzs, count = [], [], 0
    for z, x in batches:
        hz = embed(z, x)
        zs.append(gather(z.to(hz.device)).cpu())
        hzs.append(gather(hz).cpu())
        count += len(zs[-1])
        if n_samples is not None and count >= n_samples:
            break
    f.train(was_training)
    return torch.cat(zs)[:n_samples], torch.cat(hzs)[:n_samples]


def scores(z: torch.Tensor, hz: torch.Tensor, metrics: Sequence[str] = ()) -> dict:
    """R² (split in halves; also per latent), MCC, per-dimension MSE of hz and of the linear fit (paper §5.3), and
    the disentanglement_utils.METRICS `metrics` (on the varying latents).
    A latent that is constant in the data (a fixed spotlight under --rotation-only) has no variance to
    explain: it is left out of R² and MCC, and its per-latent R² and linear-fit MSE are nan."""
    varying = (z.std(0) > 0).numpy()
    if not varying.any():
        raise ValueError("every latent is constant in the scored samples")
    (r2, _), (z_test, prediction) = disentanglement_utils.linear_disentanglement(z[:, varying], hz, mode="r2",
                                                                                  train_test_split=True)
    (mcc, _), _ = disentanglement_utils.permutation_disentanglement(z[:, varying], hz, mode="pearson",
                                                                    solver="munkres", rescaling=True)
    lin_mse, r2_latents = np.full(len(varying), np.nan), np.full(len(varying), np.nan)
    lin_mse[varying] = ((z_test - prediction) ** 2).mean(0)
    r2_latents[varying] = disentanglement_utils.r2_per_column(z_test, prediction)
    return {"r2": r2, "mcc": mcc, "mse": (z - hz).square().mean(0).numpy(), "lin_mse": lin_mse,
            "r2_latents": r2_latents, **disentanglement_utils.metric_scores(z[:, varying], hz, metrics)}


def format_stats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


def format_scores(s: dict) -> str:
    """One line (arrays never wrapped: tools parse it, e.g. cpu_table.parse_test)."""
    def array(values: np.ndarray) -> str:
        return np.array2string(values, formatter={"float_kind": lambda v: f"{v:.3f}"}, max_line_width=10**6)

    return (f"R2 {s['r2']:.4f} | MCC {s['mcc']:.4f} | MSE {array(s['mse'])} | lin. MSE {array(s['lin_mse'])} | "
            f"R2 per latent {array(s['r2_latents'])}"
            + "".join(f" | {key} {value:.4f}" for key, value in s.items() if key not in BASE_SCORES))


class ThreeDIdentTask(Task):
    """The pair stream (its position is resumable state), the loss of --mode, scores over all ranks, and
    the --save-model / --save-every model files."""

    def __init__(self, args: argparse.Namespace, f: nn.Module, step_loss: Callable, stream: Stream,
                 evaluate: Callable):
        self.args, self.model, self.step_loss, self.stream, self.scores = args, unwrap(f), step_loss, stream, evaluate
        self.metrics = args.metrics

    def next_batch(self):
        return next(self.stream)

    def loss(self, batch) -> torch.Tensor:
        return self.step_loss(batch)

    def evaluate(self, metrics: Sequence[str] = ()) -> dict | None:
        s = self.scores(metrics)
        return s and {**s, **{key: rounded(s[key]) for key in ("mse", "lin_mse", "r2_latents")}}

    def final_scores(self) -> dict:
        return self.evaluate(self.metrics) or {}

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
    load_images = uses_images(args)
    try:
        if args.mode == "test":
            return SequentialThreeDIdentDataset(args.offline_dataset, layout.columns, layout.file_width,
                                                load_images, args.image_cache)
        if args.pairs == "rendered":
            return open_pair_folder(args, layout, load_images)
        latent_space = build_latent_space(layout, args.non_periodical_conditional, args.sigma)
        return ThreeDIdentDataset(args.offline_dataset, latent_space, args.batch_size, layout.columns,
                                  layout.file_width, args.approximate_dataset_nn_search, load_images,
                                  args.faiss_omp_threads, args.seed, args.image_cache)
    except DatasetFormatError as e:
        die(str(e))


def open_pair_folder(args: argparse.Namespace, layout: LatentLayout, load_images: bool) -> PairFolderDataset:
    """The exact pairs of the pair folder --offline-dataset, whose conditional must be the one the flags name."""
    data = PairFolderDataset(args.offline_dataset, args.batch_size, layout.columns, layout.file_width, load_images,
                             args.seed, args.image_cache)
    conditional, sigma = data.spec["conditional"], data.spec["sigma"]
    if (conditional, sigma) != (args.non_periodical_conditional, args.sigma):
        die(f"{args.offline_dataset} holds pairs of the {conditional} conditional with scale {sigma}: pass "
            f"--non-periodical-conditional {conditional} --sigma {sigma}")
    share, rotation_sigma = data.spec.get("share", "all"), data.spec.get("rotation_sigma", sigma)
    if (share, rotation_sigma) != ("all", sigma):
        print(f"note: {args.offline_dataset} was rendered with a warm-up aid, not the paper's method "
              f"(render_pairs.py: share {share}, rotation sigma {rotation_sigma})")
    return data


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    layout = check_args(args)
    data = open_dataset(args, layout)
    stats = image_statistics(args)
    rank, world, device = distributed_utils.init_distributed(not args.no_cuda and torch.cuda.is_available(),
                                                             args.dist_backend)
    if args.mode == "test" and world > 1:
        die("test mode runs in one process (start it without torchrun)")
    allow_tf32(device)
    set_seed(args.seed)  # the same f and g on every rank
    if rank == 0:
        print(f"latents: columns {list(layout.columns)} ({layout.n_box} box, {layout.n_sphere} on S^7)")
        if world > 1:
            print(f"torchrun: global batch {args.batch_size} = {world} ranks × {args.batch_size // world} pairs")
        if uses_images(args):
            print(f"images: normalised with mean {format_stats(stats[0])}, std {format_stats(stats[1])} "
                  f"({args.image_stats or 'released statistics'})")
    mix = build_mixing(args, layout.dim, device, stats, verbose=rank == 0)
    f = build_encoder(args, layout).to(device, memory_format=memory_format(args, device))
    if args.load_model:
        load(f, args.load_model)
    workers = data_workers(args)
    if args.mode == "test":
        data = DataLoader(data, batch_size=args.batch_size, num_workers=workers)
        z, hz = encode(f, make_embed(f, mix, device, args.amp), data)
        try:
            print(f"test set: {len(z)} images, in order | {format_scores(scores(z, hz, args.metrics))}")
        except ValueError as e:
            die(f"cannot score {args.offline_dataset}: {e}")
        return
    data.rows = distributed_utils.shard(args.batch_size, rank, world)  # this rank's part of each global batch
    # Pinned on CUDA: the copy to the GPU (non_blocking in build_mixing) then overlaps the step instead of
    # blocking it. Pinning costs one more copy of each batch in the main process, which made float32 batches
    # (588 MiB at 512 pairs of 224 px) slower than unpinned ones on an H200 (582 vs 227 ms/batch); the uint8
    # batches are 4× smaller (147 MiB). benchmarks/bench_3dident_loader.py measures the pin copy on CUDA.
    stream = Stream(lambda position: iter(pair_loader(with_start(data, position), workers,
                                                      pin_memory=device.type == "cuda")))
    if world > 1 and any(p.requires_grad for p in f.parameters()):
        f = DistributedDataParallel(distributed_utils.global_batch_norm(f, device),
                                    device_ids=[device.index] if device.type == "cuda" else None)
    embed = make_embed(f, mix, device, args.amp)
    step_loss = make_step_loss(args, layout, embed, device)

    def evaluate(metrics: Sequence[str] = ()) -> dict | None:
        z, hz = encode(f, embed, ((b[0], b[2]) for b in stream), args.n_eval_samples)
        return scores(z, hz, metrics) if rank == 0 else None

    params = [p for p in f.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD)(params, lr=args.lr) if params else None
    ckpt = read_resume(args)
    folder = None
    if args.output_dir and rank == 0:
        columns = [*training_loop.COLUMNS, "mse", "lin_mse", "r2_latents"]
        inputs = {"image_mean": list(stats[0]), "image_std": list(stats[1])} if uses_images(args) else None
        folder = RunFolder(args.output_dir, args, columns, ckpt, device, world, inputs)
    schedule = Schedule(args.iterations + 1, args.n_log_steps, args.save_every or args.n_log_steps, first_update=1,
                        loss_window=args.n_log_steps)
    task = ThreeDIdentTask(args, f, step_loss, stream, evaluate)
    try:
        final = training_loop.fit(task, optimizer, schedule, folder, ckpt, main_process=rank == 0,
                                  scaler=grad_scaler(args.amp))
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
