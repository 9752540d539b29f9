"""KITTI Masks and the SlowVAE datasets: contrastive learning on natural sparse transitions (paper §5.2).

Trains the convolutional encoder with LpSimCLRLoss (--model infonce) or the SlowVAE baseline (--model slowvae;
Klindt et al., ICLR 2021) on pairs: frames (t, t+k) of KITTI Masks or Natural Sprites, or sparse transitions on
the factor grid of dSprites, 3D Shapes, MPI3D, Cars3D or SmallNORB; then scores it with the SlowVAE-protocol MCC.
Layout of a run (seed s, experiment dir E, default "<dataset>_<data parameter>/<model parameters>", see
`experiment_dir`):
    <output-dir>/E/s/args.json, metrics.csv, checkpoint.pt, final_scores.json    (the run folder; --resume)
    <output-dir>/E/s/evaluation_<ckpt-name>.json                                (--evaluate)
    <ckpt-dir>/E/s/last (+ one per 50 000 iterations): model files   <log-dir>/E/s/ (TensorBoard, --use-writer)
    <output-dir>/E/summary.json                                                 (--random-seeds / --random-search)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch.utils.data import Dataset

import training_loop
from datasets.factor_pairs import DISTRIBUTIONS, DataFormatError, GridPairs
from datasets.natural_sprites import NaturalSprites
from datasets.slowvae_files import MPI3D_VARIANTS, READERS
from disentanglement_utils import METRICS as SCORES
from kitti_masks import slowvae
from kitti_masks.dataset import KittiFormatError, KittiMasks
from kitti_masks.evaluation import evaluate_encoder
from kitti_masks.model import get_conv_encoder
from kitti_masks.solver import KittiTask, contrastive_loss
from training_loop import RunFolder, Schedule
from training_utils import CheckpointError, add_metrics_argument, die, load_weights, select_device, set_seed

# The datasets and the number of ground-truth factors their MCC scores.
N_FACTORS = {"kittimasks": 3, "dsprites": 5, "cars3d": 3, "smallnorb": 4, "shapes3d": 6, "mpi3d": 7, "natural": 5}
MODELS = ("infonce", "slowvae")
METRICS = ("mcc", "r2")
GRID_DATA = "dsprites, shapes3d, mpi3d, cars3d, smallnorb: "
RESUME_FREE = ("resume", "evaluate", "specify", "random_search", "random_seeds", "num_runs", "output_dir", "log_dir",
               "ckpt_dir", "data_dir", "num_workers", "use_writer", "ckpt_name", "verbose", "cuda", "metrics")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Disentanglement with InfoNCE/Contrastive Learning - KITTI Masks")
    add = parser.add_argument
    add("--model", type=str, default="infonce", choices=MODELS,
        help="infonce: the contrastive encoder (the paper's model); slowvae: the SlowVAE baseline (Klindt et al.)")
    add("--box-norm", type=int, default=0,
        help="infonce: 1: learnable box output sigmoid(x)·b (the paper's box model, recommended); 0: none")
    add("--box-init", type=float, default=1.0,
        help="infonce with --box-norm 1: initial side b of the box (the original's: 1)")
    add("--p", type=int, default=1, help="infonce: exponent of the Lp model (1 = Laplace conditional, the paper's)")
    add("--experiment-dir", type=str, default="",
        help="specify path; default <dataset>_<max-delta-t | natural-discrete | data-distribution>/<p>_<box-norm> "
             "(infonce) or /<beta>_<gamma>_<rate-prior> (slowvae)")
    add("--evaluate", action="store_true", help="evaluate instead of train: score <ckpt-dir>/E/<seed>/<ckpt-name>")
    add("--specify", type=str, default="",
        help="the metrics to compute, comma-separated, of mcc, r2 (default both; r2: linear fit code → factors)")
    add("--random-search", action="store_true",
        help="like --random-seeds, and each run draws --gamma ~ U(1, 16) and --rate-prior ~ U(1, 10) (with "
             "--betavae: 0 and 1) and, with --search-beta, --beta ~ U(1, 16), as SlowVAE did")
    add("--random-seeds", action="store_true",
        help="run --num_runs seeds drawn from --seed and write summary.json (mean ± std of the MCC)")
    add("--seed", type=int, default=2, help="random seed")
    add("--output-dir", type=str, default="outputs", help="output directory: run folders <output-dir>/E/<seed>")
    add("--log-dir", type=str, default="logs", help="log directory (TensorBoard, with --use-writer)")
    add("--ckpt-dir", type=str, default="checkpoints", help="directory of the model files 'last' and '<iteration>'")
    add("--data-dir", type=str, default="./data/kitti/",
        help="folder holding the dataset's released files (kittimasks: kitti_peds_v2.pickle; docs/datasets.md)")
    add("--max-iter", type=float, default=300000, help="maximum training iteration (recommended 300000)")
    add("--dataset", type=str, default="kittimasks",
        help=f"dataset name: {', '.join(N_FACTORS)}")
    add("--batch-size", type=int, default=64, help="batch size in images = 2 × pairs (recommended 64)")
    add("--num-workers", type=int, default=2, help="dataloader num_workers (2 keep up with a GPU)")
    add("--image-size", type=int, default=64, help="image size. now only (64,64) is supported")
    add("--use-writer", action="store_true", help="write TensorBoard scalars to <log-dir>/E/<seed>")
    add("--z-dim", type=int, default=10,
        help="dimension of the representation z (≥ the dataset's number of factors; recommended 10)")
    add("--lr", type=float, default=1e-4, help="learning rate (recommended 1e-4)")
    add("--beta1", type=float, default=0.9, help="Adam optimizer beta1")
    add("--beta2", type=float, default=0.999, help="Adam optimizer beta2")
    add("--ckpt-name", type=str, default="last",
        help="model file in <ckpt-dir>/E/<seed> to evaluate (ours, or the original's checkpoints)")
    add("--log-step", type=int, default=1000, help="iterations between scores and rows of metrics.csv")
    add("--save-step", type=int, default=10000, help="iterations between saves of checkpoint.pt and 'last'")
    add("--kitti-max-delta-t", type=int, default=1,
        help="kittimasks: max t difference between frames sampled from kitti data loader (recommended 1)")
    add("--verbose", action="store_true", help="after each run, also print the matched correlation matrix")
    add("--cuda", action="store_true", help="train on the GPU when one is present")
    add("--num_runs", type=int, default=10, help="when searching over seeds, do 10")
    add("--resume", action="store_true",
        help="continue <output-dir>/E/<seed>/checkpoint.pt (without it, a run starts afresh)")
    add_metrics_argument(parser)
    model = parser.add_argument_group("SlowVAE model", "the loss of --model slowvae (kitti_masks/slowvae.py)")
    model.add_argument("--beta", type=float, default=1, help="weight for kl to normal")
    model.add_argument("--gamma", type=float, default=10, help="weight for kl to laplace")
    model.add_argument("--rate-prior", type=float, default=6, help="rate of the prior laplace (larger: sparser)")
    model.add_argument("--betavae", action="store_true", help="standard betavae training (gamma=0)")
    model.add_argument("--search-beta", action="store_true", help="with --random-search: random search over beta")
    data = parser.add_argument_group("SlowVAE datasets", "pairs of the grid datasets and Natural Sprites")
    data.add_argument("--data-distribution", type=str, default="laplace",
                      help=f"{GRID_DATA}transition of the second sample's factors (laplace, uniform)")
    data.add_argument("--rate-data", type=float, default=1,
                      help=f"{GRID_DATA}rate of the data laplace (larger: sparser; -1 = rand in U(1, 10))")
    data.add_argument("--data-k", type=int, default=-1,
                      help=f"{GRID_DATA}number of factors the data uniform changes (-1 = rand)")
    data.add_argument("--mpi3d-variant", default="real", choices=MPI3D_VARIANTS,
                      help="mpi3d: which release to read, mpi3d_<variant>.npz (real, as in SlowVAE)")
    data.add_argument("--natural-discrete", action="store_true",
                      help="natural: discretize natural sprites (x, y, area to 32, 32, 6 bins)")
    return parser


def metrics(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(m.strip() for m in args.specify.split(",")) if args.specify else METRICS


def check_args(args: argparse.Namespace) -> None:
    """One-line errors for settings the script cannot run."""
    if args.dataset not in N_FACTORS:
        die(f"unknown --dataset {args.dataset!r}; use one of {', '.join(N_FACTORS)}")
    n_factors = N_FACTORS[args.dataset]
    checks = [(args.image_size == 64, "--image-size: only 64 is supported"),
              (args.box_norm in (0, 1), "--box-norm must be 0 or 1"),
              (args.box_init > 0, "--box-init must be positive"),
              (args.p > 0, "--p must be positive"),
              (args.z_dim >= n_factors, f"--z-dim must be at least {n_factors}, the number of {args.dataset} factors"),
              (args.batch_size >= 2 and args.batch_size % 2 == 0, "--batch-size must be even and ≥ 2 (pairs)"),
              (args.max_iter >= 0 and float(args.max_iter).is_integer(), "--max-iter must be a whole number ≥ 0"),
              (min(args.log_step, args.save_step, args.kitti_max_delta_t, args.num_runs) >= 1,
               "--log-step, --save-step, --kitti-max-delta-t and --num_runs must be ≥ 1"),
              (args.num_workers >= 0, "--num-workers must be ≥ 0"),
              (args.lr > 0, "--lr must be positive"),
              (args.data_distribution in DISTRIBUTIONS,
               f"--data-distribution must be one of {', '.join(DISTRIBUTIONS)}"),
              (args.rate_data > 0 or args.rate_data == -1, "--rate-data must be positive or -1 (random)"),
              (args.data_k >= 1 or args.data_k == -1, "--data-k must be ≥ 1 or -1 (random)"),
              (args.rate_prior > 0 and min(args.beta, args.gamma) >= 0, "--rate-prior must be positive, --beta and "
               "--gamma ≥ 0"),
              (set(metrics(args)) <= set(METRICS), f"--specify takes metrics of {', '.join(METRICS)}"),
              ("mcc" in metrics(args) or not (args.random_seeds or args.random_search),
               "--specify must keep mcc with --random-seeds or --random-search (their summary is the MCC)"),
              (not (args.random_search and args.betavae and not args.search_beta),
               "--random-search with --betavae has nothing to draw but beta: add --search-beta"),
              (args.model == "infonce" or args.box_norm == 0, "--box-norm is the contrastive model's: drop it with "
               "--model slowvae")]
    for ok, message in checks:
        if not ok:
            die(message)


def slowvae_weights(args: argparse.Namespace) -> tuple[float, float, float]:
    """(β, γ, rate of the prior Laplace) of the SlowVAE loss; --betavae sets γ = 0."""
    return args.beta, 0.0 if args.betavae else args.gamma, args.rate_prior


def experiment_dir(args: argparse.Namespace) -> str:
    """--experiment-dir, else "<dataset>_<data parameter>/<model parameters>" as the original names them."""
    if args.experiment_dir:
        return args.experiment_dir
    data = {"kittimasks": args.kitti_max_delta_t, "natural": args.natural_discrete}.get(args.dataset,
                                                                                       args.data_distribution)
    model = (f"{args.p}_{args.box_norm}" if args.model == "infonce" else
             "_".join(f"{w:g}" for w in slowvae_weights(args)))
    name = f"mpi3d_{args.mpi3d_variant}" if args.dataset == "mpi3d" and args.mpi3d_variant != "real" else args.dataset
    return os.path.join(f"{name}_{data}", model)


def run_seeds(args: argparse.Namespace) -> list[int]:
    """The seeds to run: --seed, or --num_runs distinct seeds in [10^6, 10^7) drawn from --seed."""
    if not (args.random_seeds or args.random_search):
        return [args.seed]
    draws = np.random.default_rng(args.seed).choice(9_000_000, args.num_runs, replace=False)
    return [int(s) + 1_000_000 for s in draws]


def with_search_params(args: argparse.Namespace, seed: int) -> argparse.Namespace:
    """A copy of args for one run; --random-search also draws the SlowVAE weights as the original did."""
    run_args = copy.copy(args)
    run_args.seed = seed
    if args.random_search:
        rng = np.random.default_rng(seed)
        run_args.beta = rng.uniform(1, 16) if args.search_beta else 1.0
        run_args.gamma = rng.uniform(1, 16) if not args.betavae else 0.0
        run_args.rate_prior = rng.uniform(1, 10) if not args.betavae else 1.0
    return run_args


def write_json(obj: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The pairs of --dataset from --data-dir; a missing, malformed or refused file is a one-line error."""
    try:
        if args.dataset == "kittimasks":
            return KittiMasks.from_dir(args.data_dir, max_delta_t=args.kitti_max_delta_t)
        if args.dataset == "natural":
            return NaturalSprites.from_dir(args.data_dir, discrete=args.natural_discrete)
        variant = {"variant": args.mpi3d_variant} if args.dataset == "mpi3d" else {}
        grid = READERS[args.dataset](args.data_dir, **variant)
        return GridPairs(grid, args.data_distribution, rate=args.rate_data, k=args.data_k)
    except (KittiFormatError, DataFormatError, ValueError) as e:
        die(str(e))


def build_model(args: argparse.Namespace, n_channels: int) -> tuple[torch.nn.Module, Callable]:
    """The model of --model and its batch loss (interleaved pairs → scalar)."""
    if args.model == "slowvae":
        model = slowvae.SlowVAE(args.z_dim, n_channels)
        return model, partial(slowvae.batch_loss, model, **dict(zip(("beta", "gamma", "rate"),
                                                                    slowvae_weights(args))))
    encoder = get_conv_encoder(args.z_dim, n_channels=n_channels, box_norm=bool(args.box_norm),
                               box_init=args.box_init)
    return encoder, partial(contrastive_loss, encoder, p=args.p)


def tensorboard(args: argparse.Namespace, log_dir: str):
    """A metrics-row callback writing TensorBoard scalars (--use-writer), else None."""
    if not args.use_writer:
        return None
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: slow, and only needed here
    writer = SummaryWriter(log_dir)
    writer.add_text("args", json.dumps(vars(args)))

    def write(row: dict) -> None:
        for key in ("loss", "r2", "mcc"):
            writer.add_scalar(key, row[key], row["step"])
        writer.flush()
    return write


def train(args: argparse.Namespace, model: torch.nn.Module, loss_fn: Callable, dataset: Dataset,
          device: torch.device, out_dir: str, ckpt_dir: str, log_dir: str) -> dict:
    """Train to --max-iter in the run folder `out_dir` (from its checkpoint with --resume); final scores."""
    checkpoint = os.path.join(out_dir, "checkpoint.pt")
    ckpt = None
    if args.resume:
        ckpt = training_loop.read_resume_checkpoint(checkpoint)
        training_loop.check_same_flags(ckpt["args"], vars(args), training_loop.flag_names(get_args_parser()),
                                       RESUME_FREE)
        print(f"resuming {checkpoint} at iteration {ckpt['step'] - 1}")
    elif os.path.exists(checkpoint):
        print(f"{checkpoint} exists: starting afresh (--resume continues it)")
    if len(dataset) < args.batch_size // 2:
        die(f"the dataset has {len(dataset)} pairs, fewer than one batch of {args.batch_size // 2} pairs")
    folder = RunFolder(out_dir, args, training_loop.COLUMNS, ckpt, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    task = KittiTask(model, dataset, args, device, ckpt_dir, loss_fn, tensorboard(args, log_dir))
    schedule = Schedule(int(args.max_iter) + 1, args.log_step, args.save_step, first_update=1,
                        loss_window=args.log_step)
    final = training_loop.fit(task, optimizer, schedule, folder, ckpt)
    folder.write_final_scores(final)
    return final


def run(args: argparse.Namespace, dataset: Dataset, device: torch.device) -> dict:
    """Train (unless --evaluate) and evaluate one seed; returns its scores."""
    rel = os.path.join(experiment_dir(args), str(args.seed))
    out_dir, ckpt_dir, log_dir = (os.path.join(root, rel) for root in (args.output_dir, args.ckpt_dir, args.log_dir))
    set_seed(args.seed)
    model, loss_fn = build_model(args, dataset.n_channels)
    model.to(device)
    try:
        if args.evaluate:
            iteration = load_weights(model, os.path.join(ckpt_dir, args.ckpt_name))
            result = {"seed": args.seed, "checkpoint": args.ckpt_name, "iteration": iteration,
                      **evaluate_encoder(model, dataset, device, seed=args.seed, metrics=metrics(args),
                                         extra=args.metrics)}
            write_json(result, os.path.join(out_dir, f"evaluation_{args.ckpt_name}.json"))
        else:
            iteration = int(args.max_iter)
            result = {"seed": args.seed, "iteration": iteration,
                      **train(args, model, loss_fn, dataset, device, out_dir, ckpt_dir, log_dir)}
    except CheckpointError as e:
        die(str(e))
    names = [("mcc", "MCC"), ("r2", "R²"), *((key, key) for name in args.metrics for key in SCORES[name][0])]
    scores = " ".join(f"{name} {result[key]:.4f}" for key, name in names if key in result)
    print(f"seed {args.seed}: {scores} at iteration {iteration} ({result['n_samples']} samples)")
    if args.verbose and "corr_matrix" in result:
        print("matched Spearman correlations (rows: " + ", ".join(result["factors"]) + ", noise):")
        print(np.array2string(np.array(result["corr_matrix"]), precision=3, suppress_small=True))
    return result


def summarize(args: argparse.Namespace, results: list[dict]) -> dict:
    """Mean ± std (population) of the MCC over seeds, written to <output-dir>/E/summary.json."""
    mccs = np.array([r["mcc"] for r in results])
    summary = {"seeds": [r["seed"] for r in results], "mcc": mccs.tolist(),
               "mcc_mean": float(mccs.mean()), "mcc_std": float(mccs.std())}
    write_json(summary, os.path.join(args.output_dir, experiment_dir(args), "summary.json"))
    print(f"MCC over {len(mccs)} seeds: {summary['mcc_mean']:.4f} ± {summary['mcc_std']:.4f}")
    return summary


def main(argv: list[str] | None = None) -> list[dict]:
    args = get_args_parser().parse_args(argv)
    check_args(args)
    dataset = load_dataset(args)
    device = select_device(args.cuda)
    torch.backends.cudnn.benchmark = True  # fixed 64×64 inputs: let cuDNN pick the fastest kernels
    results = [run(with_search_params(args, seed), dataset, device) for seed in run_seeds(args)]
    if args.random_seeds or args.random_search:
        summarize(args, results)
    return results


if __name__ == "__main__":
    main()
