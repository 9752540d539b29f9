"""KITTI Masks: contrastive learning on pedestrian-mask videos (paper §5.2).

Trains the convolutional encoder with LpSimCLRLoss on frame pairs (t, t+k), then scores it with the
SlowVAE-protocol MCC. Layout of a run (seed s, experiment dir E, default "<dataset>_<max_delta_t>/<p>_<box_norm>"):
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

import numpy as np
import torch

import training_loop
from kitti_masks.dataset import KittiFormatError, KittiMasks
from kitti_masks.evaluation import evaluate_encoder
from kitti_masks.model import get_conv_encoder
from kitti_masks.solver import KittiTask
from training_loop import RunFolder, Schedule
from training_utils import CheckpointError, die, load_weights, select_device, set_seed

DATASETS = ("kittimasks",)
PLACEHOLDER_DATASETS = ("dsprites", "cars3d", "smallnorb", "shapes3d", "mpi3d", "natural")
N_FACTORS = 3
NO_EFFECT = "SlowVAE only: recorded in args.json, no effect on the contrastive model."
RESUME_FREE = ("resume", "evaluate", "specify", "random_search", "random_seeds", "num_runs", "output_dir", "log_dir",
               "ckpt_dir", "data_dir", "num_workers", "use_writer", "ckpt_name", "verbose", "cuda")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Disentanglement with InfoNCE/Contrastive Learning - KITTI Masks")
    add = parser.add_argument
    add("--box-norm", type=int, default=0,
        help="1: learnable box output sigmoid(x)·b (the paper's box model, recommended); 0: none")
    add("--p", type=int, default=1, help="Exponent of the Lp model (1 = Laplace conditional, the paper's setting).")
    add("--experiment-dir", type=str, default="", help="specify path; default <dataset>_<max-delta-t>/<p>_<box-norm>")
    add("--evaluate", action="store_true", help="evaluate instead of train: score <ckpt-dir>/E/<seed>/<ckpt-name>")
    add("--random-search", action="store_true",
        help="like --random-seeds, and also draws --beta/--gamma/--rate-prior as SlowVAE did (recorded only)")
    add("--random-seeds", action="store_true",
        help="run --num_runs seeds drawn from --seed and write summary.json (mean ± std of the MCC)")
    add("--seed", type=int, default=2, help="random seed")
    add("--output-dir", type=str, default="outputs", help="output directory: run folders <output-dir>/E/<seed>")
    add("--log-dir", type=str, default="logs", help="log directory (TensorBoard, with --use-writer)")
    add("--ckpt-dir", type=str, default="checkpoints", help="directory of the model files 'last' and '<iteration>'")
    add("--data-dir", type=str, default="./data/kitti/", help="folder holding kitti_peds_v2.pickle")
    add("--max-iter", type=float, default=300000, help="maximum training iteration (recommended 300000)")
    add("--dataset", type=str, default="kittimasks",
        help="dataset name: kittimasks (dsprites, cars3d, smallnorb, shapes3d, mpi3d, natural: not implemented)")
    add("--batch-size", type=int, default=64, help="batch size in images = 2 × pairs (recommended 64)")
    add("--num-workers", type=int, default=2, help="dataloader num_workers (2 keep up with a GPU)")
    add("--image-size", type=int, default=64, help="image size. now only (64,64) is supported")
    add("--use-writer", action="store_true", help="write TensorBoard scalars to <log-dir>/E/<seed>")
    add("--z-dim", type=int, default=10, help="dimension of the representation z (≥ 3; recommended 10)")
    add("--lr", type=float, default=1e-4, help="learning rate (recommended 1e-4)")
    add("--beta1", type=float, default=0.9, help="Adam optimizer beta1")
    add("--beta2", type=float, default=0.999, help="Adam optimizer beta2")
    add("--ckpt-name", type=str, default="last",
        help="model file in <ckpt-dir>/E/<seed> to evaluate (ours, or the original's checkpoints)")
    add("--log-step", type=int, default=1000, help="iterations between scores and rows of metrics.csv")
    add("--save-step", type=int, default=10000, help="iterations between saves of checkpoint.pt and 'last'")
    add("--kitti-max-delta-t", type=int, default=1,
        help="max t difference between frames sampled from kitti data loader (recommended 1)")
    add("--verbose", action="store_true", help="for evaluation: also print the matched correlation matrix")
    add("--cuda", action="store_true", help="train on the GPU when one is present")
    add("--num_runs", type=int, default=10, help="when searching over seeds, do 10")
    add("--resume", action="store_true",
        help="continue <output-dir>/E/<seed>/checkpoint.pt (without it, a run starts afresh)")
    compat = parser.add_argument_group("accepted for compatibility", NO_EFFECT)
    compat.add_argument("--specify", type=str, default="",
                        help="SlowVAE only: picked a subset of metrics; only the MCC exists here, so no effect")
    compat.add_argument("--beta", type=float, default=1, help=f"weight for kl to normal. {NO_EFFECT}")
    compat.add_argument("--gamma", type=float, default=10, help=f"weight for kl to laplace. {NO_EFFECT}")
    compat.add_argument("--rate-prior", type=float, default=6, help=f"rate of the prior laplace. {NO_EFFECT}")
    compat.add_argument("--data-distribution", type=str, default="laplace", help=f"(laplace, uniform). {NO_EFFECT}")
    compat.add_argument("--rate-data", type=float, default=1, help=f"rate of the data laplace (-1 = rand). {NO_EFFECT}")
    compat.add_argument("--data-k", type=int, default=-1, help=f"k for data uniform (-1 = rand). {NO_EFFECT}")
    compat.add_argument("--betavae", action="store_true", help=f"standard betavae training (gamma=0). {NO_EFFECT}")
    compat.add_argument("--search-beta", action="store_true", help=f"random search over beta. {NO_EFFECT}")
    compat.add_argument("--natural-discrete", action="store_true", help=f"discretize natural sprites. {NO_EFFECT}")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """One-line errors for settings the script cannot run."""
    if args.dataset in PLACEHOLDER_DATASETS:
        die(f"--dataset {args.dataset} is not implemented (a placeholder in the original); use kittimasks")
    if args.dataset not in DATASETS:
        die(f"unknown --dataset {args.dataset!r}; use kittimasks")
    checks = [(args.image_size == 64, "--image-size: only 64 is supported"),
              (args.box_norm in (0, 1), "--box-norm must be 0 or 1"),
              (args.p > 0, "--p must be positive"),
              (args.z_dim >= N_FACTORS, f"--z-dim must be at least {N_FACTORS}, the number of KITTI latents"),
              (args.batch_size >= 2 and args.batch_size % 2 == 0, "--batch-size must be even and ≥ 2 (pairs)"),
              (args.max_iter >= 0 and float(args.max_iter).is_integer(), "--max-iter must be a whole number ≥ 0"),
              (min(args.log_step, args.save_step, args.kitti_max_delta_t, args.num_runs) >= 1,
               "--log-step, --save-step, --kitti-max-delta-t and --num_runs must be ≥ 1"),
              (args.num_workers >= 0, "--num-workers must be ≥ 0"),
              (args.lr > 0, "--lr must be positive")]
    for ok, message in checks:
        if not ok:
            die(message)


def experiment_dir(args: argparse.Namespace) -> str:
    return args.experiment_dir or os.path.join(f"{args.dataset}_{args.kitti_max_delta_t}", f"{args.p}_{args.box_norm}")


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


def load_dataset(args: argparse.Namespace) -> KittiMasks:
    """KITTI Masks from --data-dir; a missing, malformed or refused pickle is a one-line error."""
    try:
        return KittiMasks.from_dir(args.data_dir, max_delta_t=args.kitti_max_delta_t)
    except KittiFormatError as e:
        die(str(e))


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


def train(args: argparse.Namespace, encoder: torch.nn.Module, dataset: KittiMasks, device: torch.device,
          out_dir: str, ckpt_dir: str, log_dir: str) -> dict:
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
    optimizer = torch.optim.Adam(encoder.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    task = KittiTask(encoder, dataset, args, device, ckpt_dir, tensorboard(args, log_dir))
    schedule = Schedule(int(args.max_iter) + 1, args.log_step, args.save_step, first_update=1,
                        loss_window=args.log_step)
    final = training_loop.fit(task, optimizer, schedule, folder, ckpt)
    folder.write_final_scores(final)
    return final


def run(args: argparse.Namespace, dataset: KittiMasks, device: torch.device) -> dict:
    """Train (unless --evaluate) and evaluate one seed; returns its scores."""
    rel = os.path.join(experiment_dir(args), str(args.seed))
    out_dir, ckpt_dir, log_dir = (os.path.join(root, rel) for root in (args.output_dir, args.ckpt_dir, args.log_dir))
    set_seed(args.seed)
    encoder = get_conv_encoder(args.z_dim, n_channels=1, box_norm=bool(args.box_norm)).to(device)
    try:
        if args.evaluate:
            iteration = load_weights(encoder, os.path.join(ckpt_dir, args.ckpt_name))
            result = {"seed": args.seed, "checkpoint": args.ckpt_name, "iteration": iteration,
                      **evaluate_encoder(encoder, dataset, device, seed=args.seed)}
            write_json(result, os.path.join(out_dir, f"evaluation_{args.ckpt_name}.json"))
        else:
            iteration = int(args.max_iter)
            result = {"seed": args.seed, "iteration": iteration,
                      **train(args, encoder, dataset, device, out_dir, ckpt_dir, log_dir)}
    except CheckpointError as e:
        die(str(e))
    print(f"seed {args.seed}: MCC {result['mcc']:.4f} R² {result['r2']:.4f} at iteration {iteration} "
          f"({result['n_samples']} samples)")
    if args.verbose:
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
