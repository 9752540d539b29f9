"""A second synthetic stand-in for KITTI Masks: pedestrians walking in front of a pinhole camera.

Writes `kitti_peds_v2.pickle` in the released file's format (kitti_masks/dataset.py): per sequence, bool
masks (T, 64, 64) of one pedestrian and float latents (T, 3) = (centre-of-mass row, centre-of-mass column,
area in pixels), computed from each mask as in the released file. Beside it, `walker_factors.npz` holds the
generative factors each mask was drawn from (FACTOR_NAMES), which tools/kitti_masks/score_factors.py scores
encoders against.

It exists to check that the KITTI results do not hinge on one generator's design: it was written
independently of tools/kitti_masks/make_synthetic.py and models the scene differently. A pedestrian is a
silhouette (head disc, trapezoid torso, capsule arms and legs that swing with a gait phase) standing on a
ground plane. It walks with a persistent velocity that small Laplace-distributed kicks perturb every frame,
and a pinhole camera projects it, so its image grows and its feet move down as it comes closer. A sequence
ends when fewer than MIN_VISIBLE of its pixels remain inside the frame, or after --max-len frames.

    python -m tools.kitti_masks.make_walkers --data-dir ./data/kitti_walkers/ --n-sequences 400 --seed 0
"""
from __future__ import annotations

import argparse
import os
import pickle

import numpy as np

from kitti_masks.dataset import FILE_NAME
from kitti_masks.evaluation import slowvae_mcc
from training_utils import atomic_write, die

SIZE = 64
FACTORS_FILE = "walker_factors.npz"  # written beside the pickle: read by tools/kitti_masks/score_factors.py
FACTOR_NAMES = ("lateral", "depth", "height", "build", "swing")  # metres, metres, metres, ×, radians
MIN_VISIBLE = 30  # a sequence ends before the first frame with fewer mask pixels than this
FOCAL = 60.0  # focal length, pixels
CENTRE_COL = (SIZE - 1) / 2  # image column of the optical axis
HORIZON_ROW = 8.0  # image row of the horizon
CAMERA_HEIGHT = 1.65  # metres above the ground, as KITTI's camera
NEAREST = 1.8  # metres; a pedestrian reaching this depth turns away from the camera
STRIDE = 1.4  # metres walked per gait cycle
SWING = 0.45  # leg swing amplitude (radians) of a pedestrian seen walking sideways
KICK = 0.01  # scale of the Laplace velocity kicks, metres per frame, per frame
ROWS, COLS = np.mgrid[0:SIZE, 0:SIZE].astype(float)


def in_capsule(x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float],
               radius: float) -> np.ndarray:
    """Points within `radius` of the segment a-b (a disc when a == b)."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 <= radius ** 2


def in_convex_polygon(x: np.ndarray, y: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Points inside a convex polygon whose vertices run counter-clockwise (y up)."""
    inside = np.ones(x.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(vertices, vertices[1:] + vertices[:1]):
        inside &= (bx - ax) * (y - ay) - (by - ay) * (x - ax) >= 0
    return inside


def limb(root: tuple[float, float], length: float, angle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """A limb hanging from `root`, swung by `angle` radians from the vertical."""
    return root, (root[0] + length * np.sin(angle), root[1] - length * np.cos(angle))


def silhouette(x: np.ndarray, y: np.ndarray, height: float, swing: float) -> np.ndarray:
    """Body points (metres, origin between the feet, y up) of a pedestrian `height` tall whose legs are
    swung by ±swing and arms by ∓0.6·swing."""
    h = height
    body = in_capsule(x, y, (0.0, 0.92 * h), (0.0, 0.92 * h), 0.075 * h)  # head
    body |= in_convex_polygon(x, y, [(-0.09 * h, 0.48 * h), (0.09 * h, 0.48 * h),
                                     (0.12 * h, 0.84 * h), (-0.12 * h, 0.84 * h)])  # torso
    for side in (-1, 1):
        body |= in_capsule(x, y, *limb((side * 0.05 * h, 0.5 * h), 0.48 * h, side * swing), 0.04 * h)
        body |= in_capsule(x, y, *limb((side * 0.13 * h, 0.8 * h), 0.36 * h, -0.6 * side * swing), 0.03 * h)
    return body


def render(lateral: float, depth: float, height: float, build: float, swing: float) -> np.ndarray:
    """The (64, 64) mask of a pedestrian whose feet stand at (lateral, depth) metres from the camera,
    projected by the pinhole model; `build` widens the body."""
    scale = FOCAL / depth  # pixels per metre at this depth
    feet_row = HORIZON_ROW + CAMERA_HEIGHT * scale
    feet_col = CENTRE_COL + lateral * scale
    return silhouette((COLS - feet_col) / (scale * build), (feet_row - ROWS) / scale, height, swing)


def walk(rng: np.random.Generator, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One pedestrian's walk: masks (T, 64, 64) and its generative factors (T, 5), FACTOR_NAMES, from which
    `render` draws each mask; T ≤ max_len (T may be 0 or 1)."""
    depth = rng.uniform(2.0, 6.0)
    lateral = (rng.uniform(8, SIZE - 8) - CENTRE_COL) * depth / FOCAL
    heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.08, 0.18)
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])  # (lateral, depth), metres per frame
    height, build, phase = rng.uniform(1.5, 1.9), rng.uniform(0.85, 1.15), rng.uniform(0, 2 * np.pi)
    masks, factors = [], []
    while len(masks) < max_len:
        sideways = abs(velocity[0]) / max(np.linalg.norm(velocity), 1e-12)  # legs swing in depth otherwise
        state = (lateral, depth, height, build, SWING * sideways * np.sin(phase))
        mask = render(*state)
        if mask.sum() < MIN_VISIBLE:
            break
        masks.append(mask)
        factors.append(state)
        velocity = velocity + rng.laplace(0.0, KICK, 2)
        lateral, depth = lateral + velocity[0], depth + velocity[1]
        if depth < NEAREST:
            depth, velocity[1] = 2 * NEAREST - depth, abs(velocity[1])
        phase += 2 * np.pi * np.linalg.norm(velocity) / STRIDE
    return np.array(masks, dtype=bool).reshape(-1, SIZE, SIZE), np.array(factors, dtype=float).reshape(-1, len(FACTOR_NAMES))


def mask_latents(masks: np.ndarray) -> np.ndarray:
    """(T, 3) = (centre-of-mass row, centre-of-mass column, area in pixels) of masks (T, 64, 64)."""
    area = masks.sum(axis=(1, 2)).astype(float)
    return np.stack([(masks * ROWS).sum(axis=(1, 2)) / area, (masks * COLS).sum(axis=(1, 2)) / area, area], axis=1)


def generate(n_sequences: int, seed: int, max_len: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(masks, latents, factors) of n_sequences walks of 2..max_len frames; shorter walks are drawn again."""
    rng = np.random.default_rng(seed)
    walks = []
    while len(walks) < n_sequences:
        masks, factors = walk(rng, max_len)
        if len(masks) >= 2:
            walks.append((masks, factors))
    return [m for m, _ in walks], [mask_latents(m) for m, _ in walks], [f for _, f in walks]


def oracle_mcc(latents: np.ndarray, factors: np.ndarray, seed: int = 0) -> dict:
    """The MCC (SlowVAE protocol, kitti_masks.evaluation) that an encoder outputting exactly the generative
    factors (n, 5) would score against the pickle's latents (n, 3): the ceiling of a perfectly identifying
    encoder. Row and area both follow the depth, so one code dimension cannot match both."""
    return slowvae_mcc(latents, factors, np.random.default_rng(seed))


def write_pickle(path: str, masks: list[np.ndarray], latents: list[np.ndarray]) -> None:
    """Write the released file's dict to `path` atomically (a temporary file in the same folder, renamed)."""
    atomic_write(path, lambda f: pickle.dump({"pedestrians": masks, "pedestrians_latents": latents}, f, protocol=4))


def write_factors(path: str, factors: list[np.ndarray]) -> None:
    """The walks' generative factors, atomically: `factors` (frames, 5) in the pickle's frame order, their
    `names` and the sequence `lengths`."""
    atomic_write(path, lambda f: np.savez(f, factors=np.concatenate(factors), names=np.array(FACTOR_NAMES),
                                          lengths=np.array([len(x) for x in factors])))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="./data/kitti_walkers/",
                        help=f"folder to write {FILE_NAME} into (recommended: ./data/kitti_walkers/)")
    parser.add_argument("--n-sequences", type=int, default=400, help="number of walks (recommended: 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (recommended: 0)")
    parser.add_argument("--max-len", type=int, default=40, help="most frames per walk (recommended: 40)")
    parser.add_argument("--oracle", action="store_true", help="also print the MCC that the generative factors "
                        f"({', '.join(FACTOR_NAMES)}) score against the latents: a perfect encoder's")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if args.n_sequences < 1:
        die(f"--n-sequences must be ≥ 1, got {args.n_sequences}")
    if args.max_len < 2:
        die(f"--max-len must be ≥ 2 (a pair needs two frames), got {args.max_len}")
    masks, latents, factors = generate(args.n_sequences, args.seed, args.max_len)
    path = os.path.join(args.data_dir, FILE_NAME)
    write_pickle(path, masks, latents)
    write_factors(os.path.join(args.data_dir, FACTORS_FILE), factors)
    print(f"wrote {path}: {len(masks)} sequences, {sum(len(m) for m in masks)} frames")
    if args.oracle:
        oracle = oracle_mcc(np.concatenate(latents), np.concatenate(factors), args.seed)
        matched = ", ".join(f"{name} {FACTOR_NAMES[j]} {c:.3f}" for name, j, c in
                            zip(("row", "column", "area"), oracle["matching"], oracle["matched_correlations"]))
        print(f"generative factors as the code: MCC {oracle['mcc']:.4f} ({matched})")


if __name__ == "__main__":
    main()
