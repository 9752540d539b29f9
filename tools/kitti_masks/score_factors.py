"""Score the KITTI table's encoders against the generative factors of the walkers stand-in.

The pickle's latents (centre-of-mass row and column, area) are what the SlowVAE protocol scores, but on
make_walkers' pedestrians they are not the factors the masks are drawn from: row and area both follow the
depth, so even an encoder that outputs the generative factors exactly scores only about 0.72 against them
(`make_walkers --oracle`). This tool reads `walker_factors.npz` (written by make_walkers beside the pickle)
and scores each finished cell of `tools/kitti_table.py --runs-dir RUNS` with the same protocol
(kitti_masks.evaluation) against the chosen factors instead.

    python -m tools.kitti_masks.score_factors --data-dir runs/kitti_walkers --runs-dir runs/kitti_walkers_b128 \
        --out results/kitti_cpu_walkers/batch128/factors
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from datasets.slowvae_files import READ_ERRORS, unreadable
from kitti_masks.dataset import KittiMasks, load_pickle
from kitti_masks.evaluation import evaluate_encoder
from main_kitti import build_model
from tools.kitti_masks.make_walkers import FACTOR_NAMES, FACTORS_FILE
from tools.kitti_table import DELTA_TS, MODELS, markdown_table
from tools.table1_grid import append_run, read_runs
from training_utils import CheckpointError, die, load_checkpoint

RUN_FIELDS = ["model", "max_delta_t", "seed", "mcc", "factors", "matched_correlations"]


def factor_dataset(data_dir: str, names: list[str]) -> KittiMasks:
    """The pickle's frames with the generative factors `names` as their ground truth. Raises ValueError
    when the factors file is missing, unreadable or does not describe the pickle's sequences."""
    path = os.path.join(data_dir, FACTORS_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found (make_walkers writes it beside the pickle)")
    try:
        with np.load(path) as f:
            factors, stored, lengths = f["factors"], [str(n) for n in f["names"]], f["lengths"]
    except READ_ERRORS as e:
        raise unreadable(path, FACTORS_FILE, e) from None
    masks, _ = load_pickle(data_dir)
    if [len(m) for m in masks] != lengths.tolist():
        raise ValueError(f"{path} does not match the pickle's sequence lengths (written by another run?)")
    columns = [stored.index(n) for n in names]
    per_sequence = np.split(factors[:, columns], np.cumsum(lengths)[:-1])
    dataset = KittiMasks(masks, per_sequence)
    dataset.factor_names = tuple(names)
    return dataset


def score_state(state: dict, dataset: KittiMasks) -> dict:
    """The SlowVAE-protocol scores of the encoder in `state` (a main_kitti model file)."""
    model, _ = build_model(argparse.Namespace(**state["args"]), dataset.n_channels)
    model.load_state_dict(state["model"])
    return evaluate_encoder(model, dataset, torch.device("cpu"), seed=state["args"]["seed"], metrics=("mcc",))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("score_factors", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="Folder of make_walkers' pickle and walker_factors.npz.")
    parser.add_argument("--runs-dir", required=True, help="kitti_table.py's --runs-dir (its ckpt/ is read).")
    parser.add_argument("--factors", nargs="+", default=["lateral", "depth", "height"], choices=FACTOR_NAMES,
                        help="Ground truth to score against (lateral depth height: the factors the masks show; "
                             "build and swing change the masks by a few pixels only).")
    parser.add_argument("--models", nargs="+", default=[m for m in MODELS if m.startswith("infonce")],
                        choices=list(MODELS), help="Rows (the InfoNCE models).")
    parser.add_argument("--delta-ts", nargs="+", type=int, default=list(DELTA_TS), help="Columns (1 5).")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="Seeds per cell (0 1 2).")
    parser.add_argument("--out", required=True, help="Folder for runs.csv and factors_table.md (commit it).")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    try:
        dataset = factor_dataset(args.data_dir, args.factors)
    except ValueError as e:
        die(str(e))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs.csv"
    done = {(r["model"], int(r["max_delta_t"]), int(r["seed"])) for r in read_runs(runs)}
    for model in args.models:
        for delta_t in args.delta_ts:
            for seed in args.seeds:
                checkpoint = Path(args.runs_dir) / "ckpt" / f"{model}_dt{delta_t}" / str(seed) / "last"
                if (model, delta_t, seed) in done or not checkpoint.is_file():
                    continue
                try:
                    state = load_checkpoint(checkpoint)
                except CheckpointError as e:
                    die(str(e))
                if state["step"] < state["args"]["max_iter"]:
                    continue  # still training: "last" is also written every --save-step
                result = score_state(state, dataset)
                append_run(runs, {"model": model, "max_delta_t": delta_t, "seed": seed, "mcc": f"{result['mcc']:.4f}",
                                  "factors": " ".join(args.factors),
                                  "matched_correlations": " ".join(f"{c:.3f}" for c in result["matched_correlations"])},
                           RUN_FIELDS)
    table = markdown_table(read_runs(runs), args.models, args.delta_ts, len(args.seeds))
    (out / "factors_table.md").write_text(table)
    print(table, end="")


if __name__ == "__main__":
    main()
