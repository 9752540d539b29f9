"""Plot R² and MCC against training step from `metrics.csv` files written by main_mlp.py (paper §5.1).

Files are grouped into one panel per setting: a file `<setting>_seed<k>.csv` (as copied by
tools/table1_grid.py) belongs to `<setting>`; a run's own `<save-dir>/metrics.csv` to its folder name.
Within a panel, one colour per file: R² solid, MCC dashed.

    python tools/plot_metrics.py results/table1_cpu/metrics/*.csv --out results/table1_cpu/scores.png
"""
from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SEED_SUFFIX = re.compile(r"_seed\d+$")
STYLES = {"r2": ("R²", "-"), "mcc": ("MCC", "--")}  # score → (label, line style)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("plot_metrics.py", description="R² and MCC against step, one panel per setting.")
    parser.add_argument("files", nargs="+", help="metrics.csv files (columns phase,step,loss,mean_loss,r2,mcc).")
    parser.add_argument("--out", required=True, help="PNG to write.")
    parser.add_argument("--phase", default="unsupervised", help="Which phase's rows to plot (unsupervised).")
    parser.add_argument("--columns", type=int, default=3, help="Panels per row (3).")
    parser.add_argument("--scores", nargs="+", choices=tuple(STYLES), default=list(STYLES),
                        help="Scores to draw (both: r2 mcc).")
    return parser


def group_name(path: Path) -> str:
    """Setting a metrics file belongs to: `<setting>_seed<k>.csv` → setting; `<dir>/metrics.csv` → dir."""
    return path.parent.name if path.stem == "metrics" else SEED_SUFFIX.sub("", path.stem)


def read_curve(path: Path, phase: str) -> dict[str, list[float]]:
    """Columns step, r2, mcc of the rows of one phase."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] == phase]
    return {k: [float(r[k]) for r in rows] for k in ("step", "r2", "mcc")}


def plot(groups: dict[str, dict[str, dict]], out: Path, columns: int, scores: list[str]) -> None:
    n_cols = min(columns, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.4 * n_rows), squeeze=False)
    for ax, (name, curves) in zip(axes.flat, groups.items()):
        for i, (label, c) in enumerate(curves.items()):
            for score in scores:
                text, style = STYLES[score]
                ax.plot(c["step"], c[score], color=f"C{i % 10}", linestyle=style, label=f"{label} {text}")
        ax.set(title=name, xlabel="step", ylabel="score", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(args: argparse.Namespace) -> None:
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            sys.exit(f"error: metrics file not found: {path}")
        curve = read_curve(path, args.phase)
        if not curve["step"]:
            sys.exit(f"error: no rows of phase {args.phase!r} in {path}")
        group = group_name(path)
        groups[group][path.stem.removeprefix(f"{group}_")] = curve
    plot(dict(sorted(groups.items())), Path(args.out), args.columns, args.scores)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
