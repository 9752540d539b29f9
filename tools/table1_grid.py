"""Run the synthetic experiments of the paper's Table 1 (§5.1) as a grid and tabulate them.

Grid = setting (generative process × model, `SETTINGS`) × seeds, at a scale (`SCALES`): `paper` gives
the paper's flags (n = 10, batch 6144, lr 1e-4, 100 001 × 3 = 300k contrastive steps, τ = 1); `cpu`
is the recipe for a 2-core machine (n = 10, batch 512, lr 1e-3, 6000 steps, half-width encoder, τ matched
to the conditional, 64× that for the L3 model, `cpu_tau`; a few rows change batch or steps,
`Setting.cpu_flags`; docs/synthetic.md). Each cell runs `main_mlp.py
--only-unsupervised` in a process of its own (the tables report the contrastive model only), so that its seed
and thread count are its own.

`--jobs N` runs N cells at once: on a machine with GPUs each cell on its own GPU (`CUDA_VISIBLE_DEVICES`),
else each on the CPU with `--threads` threads. `--launcher submitit` runs each cell as a job of a SLURM job
array, or with `--cluster local` as a local process (tools/launcher.py, docs/scale-out.md).

Resumable: every finished cell appends one row to `<out>/runs.csv` and is skipped on the next call;
an interrupted cell continues from its checkpoint (`--resume-training`). After each cell the Markdown
table `<out>/table1.md` (mean ± std over seeds beside the paper's claim) is rewritten, and the cell's
`metrics.csv` is copied to `<out>/metrics/<setting>_seed<k>.csv` for `tools/plot_metrics.py`.

    python tools/table1_grid.py --scale cpu --seeds 0 1 2 --out results/table1_cpu
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import queue
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import main_mlp  # noqa: E402
from tools import launcher  # noqa: E402
from tools.jobs import summed_wall  # noqa: E402
from training_utils import die  # noqa: E402

TARGET = 0.95  # a run "reaches" a row's claim when its score is at least TARGET × the claimed score
RUN_FIELDS = ["setting", "seed", "scale", "r2_mean", "r2_std", "mcc_mean", "mcc_std", "wall_s", "steps", "flags"]
TABLES = {"affine": "R² (identification up to an affine map)",
          "permutation": "MCC (identification up to permutation and sign)"}


@dataclass(frozen=True)
class Setting:
    """One row of the paper's synthetic tables (§5.1): a generative process and the model trained on it."""
    name: str
    table: str  # "affine" (scored by R²) or "permutation" (scored by MCC)
    process: str  # "space / marginal / conditional", as in the paper's tables
    model: str  # "output space, similarity"
    claim: str  # what the paper reports for this kind of row
    claimed: float | None  # the claimed score (None: no number to compare with offline)
    promised: bool  # the theory's assumptions hold for this row (paper Theorems 2, 4-6)
    flags: tuple[str, ...]  # main_mlp.py flags that define the process and the model
    cpu_flags: tuple[str, ...] = ()  # the CPU recipe's flags for this row, after the scale's

    @property
    def target(self) -> str:
        """The score the row is about: R² in the affine table, MCC in the permutation table."""
        return "r2" if self.table == "affine" else "mcc"


def conditional_variance(c_p: float, c_param: float) -> float:
    """Per-coordinate variance of the conditional p(z̃ | z) around z (before any truncation or projection):
    vMF(κ) on the sphere ≈ 1/κ per tangent direction; generalized normal exp(−|d|^p/λ^p): λ²Γ(3/p)/Γ(1/p)
    (Laplace λ: 2λ², Normal: σ², as main_mlp.py draws them)."""
    if c_p == 0:
        return 1.0 / c_param
    if c_p == 2:
        return c_param**2
    return c_param**2 * math.gamma(3 / c_p) / math.gamma(1 / c_p)


def recipe_tau(c_p: float, c_param: float, p: float) -> float:
    """τ of the CPU recipe: the model's conditional exp(sim/τ) gets the true conditional's variance for a
    unit-scale encoder. For the matched families this is exact (paper Theorems 2 and 5): vMF κ with the dot
    product → 1/κ; Lp model on the Lp conditional of scale λ → λ^p (Laplace λ, Normal σ: 2σ²). The dot
    product on a unit sphere is a Normal of variance τ per tangent direction."""
    variance = conditional_variance(c_p, c_param)
    if p == 0:
        return variance
    return (variance * math.gamma(1 / p) / math.gamma(3 / p)) ** (p / 2)


# The L3 encoders trained at τ = recipe_tau settle with outputs at a quarter of the latents' scale (std
# 0.06-0.08 against 0.29, both GenNorm(3) rows, seeds 0-4). With an unbounded or learnable-box output, τ
# and the output scale s are one parameter (‖sΔ‖³/τ = ‖Δ‖³/(τ/s³)), so τ only says where the encoder starts:
# the CPU recipe starts the L3 model where it settles, τ = recipe_tau / (1/4)³, instead of making it shrink
# 4-fold on the way, which is where a seed collapsed an output (docs/synthetic.md).
L3_SETTLED_SCALE = 0.25


def cpu_tau(c_p: float, c_param: float, p: float) -> float:
    """τ of the CPU recipe: `recipe_tau`, divided by L3_SETTLED_SCALE³ for the L3 model."""
    tau = recipe_tau(c_p, c_param, p)
    return tau / L3_SETTLED_SCALE**3 if p == 3 else tau


def lp_matched_tau(c_p: float, c_param: float) -> float:
    """τ at which the Lp model's similarity −‖Δ‖_p^p/τ equals the conditional's log-density (p = c_p)."""
    return recipe_tau(c_p, c_param, c_p)


CONDITIONALS = {  # name → (process text, main_mlp flags)
    "vmf1": ("vMF(κ=1)", ("--c-p", "0", "--c-param", "1")),
    "vmf10": ("vMF(κ=10)", ("--c-p", "0", "--c-param", "10")),
    "laplace": ("Laplace(λ=0.05)", ("--c-p", "1", "--c-param", "0.05")),
    "normal": ("Normal(σ=0.05)", ("--c-p", "2", "--c-param", "0.05")),
    "gennorm3": ("GenNorm(β=3, λ=0.05)", ("--c-p", "3", "--c-param", "0.05")),
    "normal1": ("Normal(σ=1)", ("--c-p", "2", "--c-param", "1")),
}
MARGINALS = {  # name → (space / marginal text, main_mlp flags)
    "sphere_uniform": ("sphere / uniform", ("--space-type", "sphere", "--m-p", "0")),
    "sphere_normal": ("sphere / Normal(σ=1)", ("--space-type", "sphere", "--m-p", "2", "--m-param", "1")),
    "box_uniform": ("box / uniform", ("--space-type", "box", "--m-p", "0")),
    "unbounded_laplace": ("unbounded / Laplace(λ=1)", ("--space-type", "unbounded", "--m-p", "1", "--m-param", "1")),
    "unbounded_normal": ("unbounded / Normal(σ=1)", ("--space-type", "unbounded", "--m-p", "2", "--m-param", "1")),
}
MODELS = {  # name → (model text, main_mlp flags)
    "dot": ("sphere, dot product", ("--p", "0")),
    "l1": ("unbounded, L1", ("--p", "1")), "l2": ("unbounded, L2", ("--p", "2")), "l3": ("unbounded, L3", ("--p", "3")),
    "box_l1": ("box, L1", ("--p", "1", "--box-norm")), "box_l2": ("box, L2", ("--p", "2", "--box-norm")),
    "box_l3": ("box, L3", ("--p", "3", "--box-norm")),
}
CLAIMS = {
    "uniform": ("R² > 99%", 0.99), "sphere_normal": ("R² ≈ 99%", 0.99), "non_uniform": ("R² ≈ 90%", 0.90),
    "matched": ("MCC ≈ 99%", 0.99), "l2": ("MCC well below R²", None), "mismatched": ("not available offline", None),
}


# The dot-product model on the sphere needs more negatives at n = 10: with batch 512 its R² stalls near
# 0.88 (seed 0, 6000 steps, constant or cosine lr); batch 2048 reaches 0.98 in 4000 steps (docs/synthetic.md).
SPHERE_CPU_FLAGS = ("--batch-size", "2048", "--n-steps", "4000")
# GenNorm(β = 3) is the conditional nearest a Normal (excess kurtosis −0.58; Laplace 3, Normal 0), so the
# signal that singles out the latent axes is the weakest: its rows identify last. With 6000 steps the
# unbounded L3 model reached 0.95 × 0.99 in 2 seeds of 3 (seed 1 at step 6750 of a 12 000-step run); with
# 9000 and `cpu_tau`, both L3 rows reach it for seeds 0-4 (seed 4 of the unbounded one at step 7500; docs/synthetic.md).
GENNORM3_CPU_FLAGS = ("--n-steps", "9000")


def setting(table: str, marginal: str, conditional: str, model: str, claim: str, promised: bool) -> Setting:
    flags = (*MARGINALS[marginal][1], *CONDITIONALS[conditional][1], *MODELS[model][1])
    return Setting(f"{marginal}_{conditional}_{model}", table,
                   f"{MARGINALS[marginal][0]} / {CONDITIONALS[conditional][0]}", MODELS[model][0],
                   *CLAIMS[claim], promised, flags,
                   SPHERE_CPU_FLAGS if model == "dot" else GENNORM3_CPU_FLAGS if conditional == "gennorm3" else ())


def box_output_row(conditional: str, model: str) -> Setting:
    """A permutation-table row with the learnable box output: promised where the model's p is the conditional's
    (Laplace → L1, GenNorm(3) → L3, paper Theorem 5); L2 on a Normal conditional leaves a rotation."""
    matched = model[-1] == {"laplace": "1", "gennorm3": "3"}.get(conditional)
    claim = "matched" if matched else "l2" if (conditional, model) == ("normal", "box_l2") else "mismatched"
    return setting("permutation", "box_uniform", conditional, model, claim, matched)


SETTINGS = (
    setting("affine", "sphere_uniform", "vmf1", "dot", "uniform", True),
    setting("affine", "sphere_uniform", "vmf10", "dot", "uniform", True),
    setting("affine", "sphere_uniform", "laplace", "dot", "uniform", False),
    setting("affine", "sphere_uniform", "normal", "dot", "uniform", False),
    setting("affine", "box_uniform", "normal", "l2", "uniform", True),
    setting("affine", "box_uniform", "laplace", "l2", "uniform", False),
    setting("affine", "box_uniform", "laplace", "l3", "uniform", False),
    setting("affine", "box_uniform", "normal", "l3", "uniform", False),
    setting("affine", "sphere_normal", "laplace", "dot", "sphere_normal", False),
    setting("affine", "sphere_normal", "normal", "dot", "sphere_normal", False),
    setting("affine", "unbounded_laplace", "normal1", "l2", "non_uniform", False),
    setting("affine", "unbounded_normal", "normal1", "l2", "non_uniform", False),
    *(box_output_row(conditional, model)
      for conditional in ("laplace", "gennorm3", "normal") for model in ("box_l1", "box_l3", "box_l2")),
    setting("permutation", "box_uniform", "laplace", "l1", "matched", True),
    setting("permutation", "box_uniform", "gennorm3", "l3", "matched", True),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def flag_value(flags: tuple[str, ...] | list[str], name: str) -> float:
    return float(flags[list(flags).index(name) + 1])


# Training flags per scale. "cpu_tau": τ from `cpu_tau` (else the paper's τ = 1). The CPU recipe:
# batch 512 (not 6144), lr 1e-3 (not 1e-4), a half-width f with He init (docs/synthetic.md, "Why runs stalled").
SCALES = {
    "paper": {"cpu_tau": False,
              "flags": ("--n", "10", "--batch-size", "6144", "--lr", "1e-4", "--n-steps", "100001",
                        "--more-unsupervised", "3", "--encoder-scale", "1", "--n-log-steps", "250")},
    "cpu": {"cpu_tau": True,
            "flags": ("--n", "10", "--batch-size", "512", "--lr", "1e-3", "--n-steps", "6000",
                      "--more-unsupervised", "1", "--encoder-scale", "0.5", "--n-log-steps", "250",
                      "--num-eval-batches", "4")},
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("table1_grid.py", description="Table 1 grid: settings × seeds at a scale.")
    parser.add_argument("--scale", choices=tuple(SCALES), default="cpu",
                        help="cpu: the 2-core recipe (1-8 min per cell on one thread); "
                             "paper: n 10, batch 6144, 300k steps (GPU-sized).")
    parser.add_argument("--settings", nargs="+", default=[s.name for s in SETTINGS], metavar="NAME",
                        help=f"Rows to run (default all): {', '.join(SETTINGS_BY_NAME)}.")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="Seeds per setting (0 1 2).")
    parser.add_argument("--out", default="results/table1_cpu",
                        help="Folder for runs.csv, table1.md and metrics/ (commit it).")
    parser.add_argument("--runs-dir", default="runs/table1",
                        help="Folder for each cell's checkpoints (large; not committed).")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads per cell (1: on a shared 2-core machine 2 threads ran 4x slower).")
    parser.add_argument("--jobs", type=int, default=1,
                        help="Cells run at once, each in its own process: one per GPU when GPUs are there (--jobs = "
                             "#GPUs), else on the CPU (--jobs = #cores with --threads 1); 1 runs them one after another.")
    parser.add_argument("--table-only", action="store_true",
                        help="Rewrite table1.md from runs.csv (rows counted against --seeds) without running cells.")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="Flags appended to every cell's main_mlp.py command line (last; overrides the scale), "
                             "e.g. --extra --n-steps 200.")
    launcher.add_launcher_args(parser)
    return parser


def cell_flags(setting: Setting, scale: str, seed: int, threads: int, extra: list[str]) -> list[str]:
    """The main_mlp.py command line of one cell (run dir and resume excluded)."""
    profile = SCALES[scale]
    flags = setting.flags
    tau = cpu_tau(flag_value(flags, "--c-p"), flag_value(flags, "--c-param"), flag_value(flags, "--p")) \
        if profile["cpu_tau"] else 1.0
    training = list(profile["flags"])
    for name, value in zip(setting.cpu_flags[::2], setting.cpu_flags[1::2]) if scale == "cpu" else ():
        training[training.index(name) + 1] = value
    return [*flags, *training, "--tau", f"{tau:.6g}", "--seed", str(seed), "--threads", str(threads),
            "--only-unsupervised", *extra]


def read_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_run(path: Path, row: dict, fields: list[str] = RUN_FIELDS) -> None:
    """Append one row to a CSV file, writing the header first when the file is new."""
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def device_slots(jobs: int) -> queue.Queue:
    """One slot per concurrent cell: a GPU index (cell slots spread over the GPUs) or None on the CPU."""
    slots = queue.Queue()
    gpus = torch.cuda.device_count()
    for job in range(jobs):
        slots.put(job % gpus if gpus else None)
    return slots


def run_cell_in_slot(setting: Setting, seed: int, args: argparse.Namespace, run_dir: Path, slots: queue.Queue) -> dict:
    """`run_cell` on a free slot's GPU (or the CPU), the slot returned afterwards."""
    gpu = slots.get()
    try:
        print(f"=== {setting.name} seed {seed} ({args.scale}{'' if gpu is None else f', GPU {gpu}'}) ===",
              flush=True)
        return run_cell(setting, seed, args, run_dir, gpu)
    finally:
        slots.put(gpu)


def train(argv: list[str], gpu: int | None) -> dict:
    """Run `main_mlp.py argv` in a process of its own (on GPU `gpu` alone, if given) and return its final
    unsupervised scores from <save-dir>/final_scores.json. Raises RuntimeError if it fails."""
    env = dict(os.environ, **({"CUDA_VISIBLE_DEVICES": str(gpu)} if gpu is not None else {}))
    code = subprocess.run([sys.executable, str(REPO / "main_mlp.py"), *argv], env=env).returncode
    if code != 0:
        raise RuntimeError(f"main_mlp.py {' '.join(argv)} exited with status {code}")
    save_dir = Path(argv[argv.index("--save-dir") + 1])
    return json.loads((save_dir / "final_scores.json").read_text())["unsupervised"]


def run_cell(setting: Setting, seed: int, args: argparse.Namespace, run_dir: Path, gpu: int | None = None) -> dict:
    """Train one cell with main_mlp (continuing a checkpoint if one is there); return its runs.csv row."""
    flags = cell_flags(setting, args.scale, seed, args.threads, args.extra)
    resume = (run_dir / "checkpoint.pt").is_file()
    argv = [*flags, "--save-dir", str(run_dir), *(["--resume-training"] if resume else [])]
    cell_args = launcher.checked_flags(main_mlp.get_args_parser(), argv)
    with summed_wall(run_dir, resume) as wall:  # a requeued or interrupted cell: every attempt's time
        scores = train(argv, gpu)
        wall_s = wall()
    return {"setting": setting.name, "seed": seed, "scale": args.scale, **{k: f"{v:.4f}" for k, v in scores.items()},
            "wall_s": f"{wall_s:.1f}", "steps": cell_args.n_steps * cell_args.more_unsupervised,
            "flags": " ".join(flags)}


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "—"


def time_to_target(metrics_csv: Path, key: str, threshold: float) -> float | None:
    """Seconds (the logged `elapsed_s`) until score `key` first reached `threshold` at a logged step; None if never."""
    with open(metrics_csv, newline="") as f:
        reached = [r for r in csv.DictReader(f) if float(r[key]) >= threshold]
    return float(reached[0]["elapsed_s"]) if reached else None


def reach_cells(rows: list[dict], setting: Setting, metrics_dir: Path) -> tuple[str, str]:
    """(runs whose final score reached TARGET × claim, mean seconds to first reach it), as table cells."""
    if setting.claimed is None:
        return "—", "—"
    threshold = TARGET * setting.claimed
    final = sum(float(r[f"{setting.target}_mean"]) >= threshold for r in rows)
    times = [time_to_target(metrics_dir / f"{setting.name}_seed{r['seed']}.csv", setting.target, threshold)
             for r in rows]
    hit = [t for t in times if t is not None]
    return f"{final}/{len(rows)}", f"{np.mean(hit):.0f} s" if hit else "never"


def markdown_table(rows: list[dict], scale: str, metrics_dir: Path, seeds: int) -> str:
    """Both tables: per setting, mean ± std over seeds (population std) of each run's final R² and MCC,
    the runs reaching TARGET × the claimed score, and the mean time to first reach it. A row with fewer
    than `seeds` runs is marked incomplete; a row without runs says so."""
    lines = [f"Scale `{scale}`: mean ± std over seeds of the final R² and MCC (each run: mean over its evaluation "
             f"batches). reached: runs whose final score is ≥ {TARGET} × the paper's claimed score; time: mean "
             "seconds until a logged score first reached it. theory: ✓ where the paper's theorems promise the "
             "identification the table scores."]
    for table, title in TABLES.items():
        lines += ["", f"### {title}", "",
                  "| generative process (space / marginal / conditional) | model | theory | paper | R² | MCC "
                  "| reached | time | s/run | runs |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for setting in (s for s in SETTINGS if s.table == table):
            mine = [r for r in rows if r["setting"] == setting.name and r["scale"] == scale]
            theory = "✓" if setting.promised else "✗"
            if not mine:
                lines.append(f"| {setting.process} | {setting.model} | {theory} | {setting.claim} "
                             f"| not run | | | | | 0/{seeds} |")
                continue
            r2, mcc = ([float(r[k]) for r in mine] for k in ("r2_mean", "mcc_mean"))
            wall = np.mean([float(r["wall_s"]) for r in mine])
            reached, time_cell = reach_cells(mine, setting, metrics_dir)
            runs = f"{len(mine)}/{seeds}" + (" incomplete" if len(mine) < seeds else "")
            lines.append(f"| {setting.process} | {setting.model} | {theory} | {setting.claim} | {mean_std(r2)} "
                         f"| {mean_std(mcc)} | {reached} | {time_cell} | {wall:.0f} | {runs} |")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> list[dict]:
    """Run every unfinished cell, then (re)write the table; return all rows of runs.csv."""
    unknown = [name for name in args.settings if name not in SETTINGS_BY_NAME]
    if args.jobs < 1:
        die(f"--jobs must be >= 1, got {args.jobs}")
    if unknown:
        die(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS_BY_NAME)}")
    out, runs_dir = Path(args.out), Path(args.runs_dir) / args.scale
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    runs_csv = out / "runs.csv"

    def finish(row: dict) -> None:
        """A finished cell: its row, its metrics.csv and the table, written as cells finish."""
        append_run(runs_csv, row)
        name = f"{row['setting']}_seed{row['seed']}"
        shutil.copyfile(runs_dir / name / "metrics.csv", out / "metrics" / f"{name}.csv")
        (out / "table1.md").write_text(markdown_table(read_runs(runs_csv), args.scale, out / "metrics",
                                                      len(args.seeds)))

    failures = launcher.collected(runs_dir / "submitit", finish)
    done = {(r["setting"], int(r["seed"]), r["scale"]) for r in read_runs(runs_csv)}
    todo = []
    for name in [] if args.table_only else args.settings:
        for seed in args.seeds:
            if (name, seed, args.scale) in done:
                print(f"skip {name} seed {seed}: already in {runs_csv}")
            else:
                todo.append((name, seed))
    for name, seed in todo:  # a bad --extra flag stops here, before any cell runs or is submitted
        launcher.checked_flags(main_mlp.get_args_parser(),
                               cell_flags(SETTINGS_BY_NAME[name], args.scale, seed, args.threads, args.extra))
    if args.launcher == "submitit" and todo:
        failures += launcher.run_jobs({f"{name}_seed{seed}": (run_cell, (SETTINGS_BY_NAME[name], seed, args,
                                                                         runs_dir / f"{name}_seed{seed}"))
                                       for name, seed in todo}, finish, args, runs_dir / "submitit")
        todo = []
    slots = device_slots(args.jobs)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        cells = {pool.submit(run_cell_in_slot, SETTINGS_BY_NAME[name], seed, args, runs_dir / f"{name}_seed{seed}",
                             slots): (name, seed) for name, seed in todo}
        for cell in as_completed(cells):  # rows are written here, by one thread, as cells finish
            name, seed = cells[cell]
            try:
                finish(cell.result())
            except RuntimeError as e:
                pool.shutdown(wait=False, cancel_futures=True)  # the cells not yet started
                die(f"{name} seed {seed}: {e}")
    rows = read_runs(runs_csv)
    table = markdown_table(rows, args.scale, out / "metrics", len(args.seeds))
    (out / "table1.md").write_text(table)
    print(table)
    launcher.report(failures)
    return rows


if __name__ == "__main__":
    main(get_args_parser().parse_args())
