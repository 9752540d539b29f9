"""The KITTI Masks table (paper §5.2) at CPU scale: InfoNCE with the L1 (Laplace) and L2 (Normal) models,
each with the learnable box output and unbounded, next to the SlowVAE baseline (Klindt et al., ICLR 2021) and
the untrained encoder, for two frame-gap settings (`--kitti-max-delta-t`), over seeds; with `--dataset`, the
same rows on another of main_kitti's datasets.

Each cell calls `main_kitti.main` in-process with the CPU recipe (`RECIPE`: 3000 iterations at batch 128, lr
1e-4 as in the paper; the box starts at side 10, see docs/kitti.md); SlowVAE keeps its batch 64.
Resumable: every finished cell appends one row to `<out>/runs.csv` and is skipped on the next call (whatever
flags it ran with: give another recipe another --out); an interrupted cell continues from its checkpoint
(`--resume`); `<out>/kitti_table.md` is rewritten after each cell, with the number of seeds per cell (an
incomplete cell says so). `--launcher submitit` runs each cell as a SLURM job (tools/launcher.py).
`--metrics dci mig sap modularity` adds the SlowVAE paper's other columns: each cell also scores them (main_kitti
--metrics), runs.csv keeps them and the table gets one more table per score (give them their own --out: runs.csv's
columns are fixed).

    python tools/kitti_table.py --data-dir data/kitti --seeds 0 1 2 --out results/kitti_cpu/batch128
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import main_kitti  # noqa: E402
from disentanglement_utils import METRICS  # noqa: E402
from tools import launcher  # noqa: E402
from tools.jobs import summed_wall  # noqa: E402
from tools.table1_grid import append_run, mean_std, read_runs  # noqa: E402
from training_utils import die  # noqa: E402

MODELS = {  # name → (label, flags); the flags come after RECIPE and override it
    "untrained": ("untrained encoder (L1 box model at step 0)", ("--p", "1", "--box-norm", "1", "--max-iter", "0")),
    "infonce_l1_box": ("InfoNCE L1 (Laplace), box", ("--p", "1", "--box-norm", "1", "--box-init", "10")),
    "infonce_l1": ("InfoNCE L1 (Laplace), unbounded", ("--p", "1", "--box-norm", "0")),
    "infonce_l2_box": ("InfoNCE L2 (Normal), box", ("--p", "2", "--box-norm", "1", "--box-init", "10")),
    "infonce_l2": ("InfoNCE L2 (Normal), unbounded", ("--p", "2", "--box-norm", "0")),
    "slowvae": ("SlowVAE (β 1, γ 10, rate 6; batch 64)", ("--model", "slowvae", "--batch-size", "64")),
}
DELTA_TS = (1, 5)
RECIPE = ("--max-iter", "3000", "--batch-size", "128", "--log-step", "500", "--save-step", "1000", "--num-workers", "0")
RUN_FIELDS = ["model", "max_delta_t", "seed", "mcc", "r2", "wall_s", "flags"]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("kitti_table.py", description="KITTI Masks table at CPU scale.")
    parser.add_argument("--data-dir", required=True, help="Folder of the dataset's files (kittimasks: "
                        "kitti_peds_v2.pickle, real or synthetic).")
    parser.add_argument("--dataset", default="kittimasks", help="main_kitti's --dataset (kittimasks; the frame-gap "
                        "columns apply to kittimasks only: use --delta-ts 1 for the others).")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="Rows (all).")
    parser.add_argument("--delta-ts", nargs="+", type=int, default=list(DELTA_TS),
                        help="--kitti-max-delta-t settings, the columns (1 5).")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="Seeds per cell (0 1 2).")
    parser.add_argument("--out", default="results/kitti_cpu/batch128",
                        help="runs.csv and kitti_table.md (commit it; results/kitti_cpu holds the batch-64 cells).")
    parser.add_argument("--runs-dir", default="runs/kitti_table", help="Run folders and checkpoints (not committed).")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="Training iterations per cell (default: the recipe's 3000; the untrained row keeps 0).")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="Images per batch, 2 × pairs, of the InfoNCE rows (default: the recipe's 128; "
                        "the SlowVAE row keeps 64).")
    parser.add_argument("--cuda", action="store_true", help="Train each cell on the GPU when one is present "
                        "(main_kitti --cuda; not a recipe flag: runs.csv's flags leave it out).")
    parser.add_argument("--table-only", action="store_true", help="Rewrite the table from runs.csv; run nothing.")
    parser.add_argument("--metrics", nargs="+", default=[], choices=list(METRICS), metavar="NAME",
                        help="Scores besides the MCC, one table each (none; the SlowVAE paper's: dci mig sap "
                             f"modularity; all: {', '.join(METRICS)}).")
    launcher.add_launcher_args(parser)
    return parser


def score_keys(args: argparse.Namespace) -> list[str]:
    """The columns of runs.csv and the tables that --metrics adds."""
    return [key for name in args.metrics for key in METRICS[name][0]]


def cell_flags(model: str, delta_t: int, seed: int, args: argparse.Namespace) -> list[str]:
    overrides = []
    for flag, value in (("--max-iter", args.max_iter), ("--batch-size", args.batch_size)):
        if value is not None:
            overrides += [flag, str(value)]
    return [*RECIPE, *overrides, *MODELS[model][1], "--kitti-max-delta-t", str(delta_t), "--seed", str(seed),
            "--dataset", args.dataset, "--data-dir", args.data_dir, "--experiment-dir", f"{model}_dt{delta_t}",
            "--output-dir", str(Path(args.runs_dir) / "outputs"), "--ckpt-dir", str(Path(args.runs_dir) / "ckpt"),
            *(["--metrics", *args.metrics] if args.metrics else [])]


def run_cell(model: str, delta_t: int, seed: int, args: argparse.Namespace) -> dict:
    """Train one cell with main_kitti (continuing its checkpoint if one is there); return its runs.csv row."""
    flags = cell_flags(model, delta_t, seed, args)
    folder = Path(args.runs_dir) / "outputs" / f"{model}_dt{delta_t}" / str(seed)
    resume = (folder / "checkpoint.pt").is_file()
    with summed_wall(folder, resume) as wall:  # a requeued or interrupted cell: every attempt's time
        result, = main_kitti.main([*flags, *(["--cuda"] if args.cuda else []), *(["--resume"] if resume else [])])
        wall_s = wall()
    return {"model": model, "max_delta_t": delta_t, "seed": seed, "mcc": f"{result['mcc']:.4f}",
            "r2": f"{result['r2']:.4f}", "wall_s": f"{wall_s:.1f}", "flags": " ".join(flags),
            **{key: f"{result[key]:.4f}" for key in score_keys(args)}}


def markdown_table(rows: list[dict], models: list[str], delta_ts: list[int], seeds: int, key: str = "mcc",
                   label: str = "MCC") -> str:
    """Score `key` (MCC) mean ± std over seeds per model (rows) and --kitti-max-delta-t (columns), seeds counted."""
    lines = ["| model | " + " | ".join(f"{label}, max Δt {d} frames" for d in delta_ts) + " |",
             "|---" * (len(delta_ts) + 1) + "|"]
    for model in models:
        cells = []
        for d in delta_ts:
            mccs = [float(r[key]) for r in rows if r["model"] == model and int(r["max_delta_t"]) == d]
            cell = f"{mean_std(mccs)} ({len(mccs)}/{seeds} seeds)"
            cells.append(cell if len(mccs) >= seeds else f"{cell}, incomplete")
        lines.append(f"| {MODELS[model][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs.csv"

    fields = RUN_FIELDS + score_keys(args)
    with open(runs, newline="") if runs.is_file() else io.StringIO() as f:
        columns = next(csv.reader(f), fields)
    if columns != fields:
        die(f"{runs} has other columns than these flags write ({', '.join(fields)}): give them another --out")

    def write_table() -> None:
        text = "\n".join(markdown_table(read_runs(runs), args.models, args.delta_ts, len(args.seeds), key, label)
                         for key, label in [("mcc", "MCC"), *((key, key) for key in score_keys(args))])
        (out / "kitti_table.md").write_text(text)
        print(text)

    def finish(row: dict) -> None:
        append_run(runs, row, fields)
        write_table()

    jobs = Path(args.runs_dir) / "submitit"
    failures = launcher.collected(jobs, finish)
    done = {(r["model"], int(r["max_delta_t"]), int(r["seed"])) for r in read_runs(runs)}
    todo = [] if args.table_only else [(model, delta_t, seed) for seed in args.seeds for delta_t in args.delta_ts
                                       for model in args.models if (model, delta_t, seed) not in done]
    if args.launcher == "submitit" and todo:  # seed-major: every cell gets its first seed before any its second
        failures += launcher.run_jobs({f"{m}_dt{d}_seed{s}": (run_cell, (m, d, s, args)) for m, d, s in todo},
                                      finish, args, jobs)
    else:
        for cell in todo:
            finish(run_cell(*cell, args))
    write_table()
    launcher.report(failures)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
