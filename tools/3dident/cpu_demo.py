"""CPU demonstration of the 3DIdent pipeline end to end (paper §5.3), in about ten minutes on 2 cores:
generate latents (box variant, as released), render a few thousand 64-pixel images, measure the training
folder's per-channel image statistics (image_stats.py), train the unsupervised ResNet-18 model of
main_3dident.py for a few minutes, and compare R² and MCC on a held-out rendered test set for the untrained
and the trained encoder (both scored by `--mode test`). Training and test images are normalised with the
training folder's statistics (--image-normalisation folder): these renders are brighter than the released
ones, whose constants would leave the inputs far from zero mean and unit variance.

    python tools/3dident/cpu_demo.py --work-dir runs/3dident_demo
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from datasets.threedident_dataset import STATS_FILE  # noqa: E402

SCORE_LINE = re.compile(r"R2 (?P<r2>-?[\d.]+) \| MCC (?P<mcc>[\d.]+)")
RENDERED_LINE = re.compile(r"^rendered (\d+) images", re.MULTILINE)  # render_dataset.py's last line


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="3DIdent CPU demo: render, train ResNet-18 unsupervised, score.")
    parser.add_argument("--work-dir", default="runs/3dident_demo", help="Where data and the model go.")
    parser.add_argument("--n-train", type=int, default=3000, help="Training renders (3000).")
    parser.add_argument("--n-test", type=int, default=1000, help="Held-out test renders (1000).")
    parser.add_argument("--iterations", type=int, default=150, help="Training steps (150: ~6 min at batch 64).")
    parser.add_argument("--batch-size", type=int, default=64, help="Pairs per step (64).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3 for a short run).")
    parser.add_argument("--threads", type=int, default=1, help="Torch CPU threads per process (1 on 2 cores).")
    return parser


def run(command: list[str], env: dict) -> str:
    """Run a step of the demo, echo and return its output; stop the demo if it fails."""
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"error: step failed:\n{result.stderr.strip()}")
    return result.stdout


def render(work: Path, n_train: int, n_test: int, size: int, env: dict) -> None:
    """Train (latent seed 0) and held-out test (seed 1) folders and the training folder's image statistics.
    Latents already there with the asked number of rows are kept (the same seed draws the same ones), and
    render_dataset.py renders only missing, stale or damaged images, so a second call resumes; the
    statistics are computed again only when a training image was rendered."""
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        folder = work / name
        latents = folder / "raw_latents.npy"
        if not (latents.is_file() and len(np.load(latents, mmap_mode="r")) == n):
            run([sys.executable, str(TOOLS / "generate_latents.py"), str(folder), "--n", str(n), "--seed", str(seed)],
                env)
        output = run([sys.executable, str(TOOLS / "render_dataset.py"), str(folder), "--size", str(size),
                      "--threads", "1"], env)  # one rendering process per usable CPU
        rendered = int(RENDERED_LINE.search(output)[1])
        if name == "train" and (rendered or not (folder / STATS_FILE).is_file()):
            run([sys.executable, str(TOOLS / "image_stats.py"), str(folder)], env)


def test_scores(output: str) -> tuple[float, float]:
    match = SCORE_LINE.search(output.splitlines()[-1])
    return float(match["r2"]), float(match["mcc"])


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    work = Path(args.work_dir).resolve()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    py = sys.executable
    start = time.perf_counter()
    render(work, args.n_train, args.n_test, 64, env)
    common = ["--non-periodic-rotation-and-color", "--batch-size", str(args.batch_size), "--workers", "1",
              "--no-cuda", "--image-normalisation", "folder", "--image-stats", str(work / "train" / "image_stats.json")]
    test = [py, "main_3dident.py", "--mode", "test", "--offline-dataset", str(work / "test"), *common]
    untrained = test_scores(run(test, env))
    t_train = time.perf_counter()
    run([py, "main_3dident.py", "--mode", "unsupervised", "--offline-dataset", str(work / "train"), *common,
         "--iterations", str(args.iterations), "--lr", str(args.lr), "--n-log-steps", "50",
         "--n-eval-samples", "512", "--save-model", str(work / "model.pt")], env)
    train_minutes = (time.perf_counter() - t_train) / 60
    trained = test_scores(run([*test, "--load-model", str(work / "model.pt")], env))
    print(f"\nheld-out test set ({args.n_test} renders), ResNet-18 trained {args.iterations} steps "
          f"({train_minutes:.1f} min), demo total {(time.perf_counter() - start) / 60:.1f} min")
    print(f"untrained encoder: R2 {untrained[0]:.3f}  MCC {untrained[1]:.3f}")
    print(f"trained encoder:   R2 {trained[0]:.3f}  MCC {trained[1]:.3f}")


if __name__ == "__main__":
    main()
