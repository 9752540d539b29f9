"""Stand-in for the Natural Sprites sequences (Klindt et al., ICLR 2021, App. D), `natural_sprites.npz`: latents
(F, 3) float32 = (x, y, area) per frame (centre column, centre row, area in pixels of a 64×64 frame), sequences
back to back, and lengths (S,) int64.

The released Natural Sprites take these statistics from YouTube-VOS object masks, `downscale_keepaspect.csv`
(a header, then one row per video: id, category, and one cell per frame holding a Python list with, for each
object, [y, x, area] or nothing); `--from-csv` converts it: each object's runs of consecutive frames in which it
is present, two frames or more, become sequences. Without it, the sequences are the centre of mass and area of the
walking figures of the synthetic KITTI Masks generator (tools/kitti_masks/make_synthetic.py): sparse, heavy-tailed
(generalized normal, β ≈ 0.6) transitions with KITTI Masks' step scales.

Run from the repository root:
    python -m tools.slowvae_data.natural_sprites --data-dir ./data/natural/
    python -m tools.slowvae_data.natural_sprites --data-dir ./data/natural/ --from-csv downscale_keepaspect.csv
"""
from __future__ import annotations

import argparse
import ast
import csv
import os

import numpy as np

from datasets.natural_sprites import FILE_NAME
from tools.kitti_masks.make_synthetic import WalkConfig, simulate_sequence
from training_utils import atomic_write, die


def make_sequences(n_sequences: int, seed: int, config: WalkConfig = WalkConfig()) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    latents = [simulate_sequence(rng, config)[1] for _ in range(n_sequences)]  # (row, col, area) per frame
    return {"latents": np.concatenate(latents)[:, [1, 0, 2]].astype(np.float32),
            "lengths": np.array([len(z) for z in latents], dtype=np.int64)}


def object_runs(frames: list[list], obj: int) -> list[list[tuple[float, float, float]]]:
    """The runs of consecutive frames in which object `obj` is present, as (x, y, area) per frame."""
    runs, run = [], []
    for frame in [*frames, []]:
        value = frame[obj] if obj < len(frame) else None
        if value:
            run.append((value[1], value[0], value[2]))
            continue
        if len(run) >= 2:
            runs.append(run)
        run = []
    return runs


def sequences_from_csv(path: str) -> dict[str, np.ndarray]:
    """latents and lengths of every object's runs of two or more frames in the released CSV."""
    sequences = []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for row in rows:
            frames = [ast.literal_eval(cell) if cell else [] for cell in row[2:]]
            for obj in range(max((len(frame) for frame in frames), default=0)):
                sequences += object_runs(frames, obj)
    if not sequences:
        die(f"{path} holds no object seen in two consecutive frames")
    return {"latents": np.array([frame for run in sequences for frame in run], dtype=np.float32),
            "lengths": np.array([len(run) for run in sequences], dtype=np.int64)}


def write_sequences(data_dir: str, data: dict[str, np.ndarray]) -> str:
    """`data` as `<data_dir>/natural_sprites.npz`, written atomically; returns its path."""
    path = os.path.join(data_dir, FILE_NAME)
    atomic_write(path, lambda f: np.savez_compressed(f, **data))
    return path


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=f"Write Natural Sprites sequences ({FILE_NAME}).")
    parser.add_argument("--data-dir", default="./data/natural/", help="output folder (default ./data/natural/)")
    parser.add_argument("--n-sequences", type=int, default=300, help="number of sequences (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the output is deterministic)")
    parser.add_argument("--from-csv", default="", help="convert the released downscale_keepaspect.csv instead")
    return parser


def main() -> None:
    args = get_args_parser().parse_args()
    if args.n_sequences < 1:
        die("--n-sequences must be ≥ 1")
    data = sequences_from_csv(args.from_csv) if args.from_csv else make_sequences(args.n_sequences, args.seed)
    path = write_sequences(args.data_dir, data)
    print(f"wrote {path}: {len(data['lengths'])} sequences, {len(data['latents'])} frames")


if __name__ == "__main__":
    main()
