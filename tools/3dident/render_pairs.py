"""Render a pair folder of exact positive pairs (paper §2, §5.3): anchors z uniform on [-1, 1]^10 (the released box
variant), positives z̃ drawn from the conditional around z and rendered themselves, with no nearest-neighbour snap.
The conditional is main_3dident.py's (datasets/threedident_latents.py, spaces.NBoxSpace): Normal with std --sigma
(l2), Laplace with scale λ = --sigma (l1) or the generalized normal p = 3 (l3), each truncated to the box by
redrawing the coordinates that fall outside. `main_3dident.py --pairs rendered` trains on the folder.

Layout of the folder:
- `pairs.json`: {"n", "conditional", "sigma", "seed", "size", "share", "rotation_sigma"};
- `anchors/`, `positives/`: 3DIdent folders (raw_latents.npy, latents.npy, images/<index>.png), pair i = row i of each;
- `image_stats.json`: the anchors' per-channel image statistics (for --image-normalisation folder);
- `anchors/images_uint8.npy`, `positives/images_uint8.npy`: the image caches, written not here but by the first
  `main_3dident.py --pairs rendered --image-cache` run (one per part; rebuilt there after this tool renders anew).

Warm-up aids, not the paper's method, for a first training phase only, followed by a folder of the paper's
conditional (docs/3dident.md, "Where the rotations die"): --share rotations (research brief E1b) keeps only the
anchor's rotations α, β, γ in the positive (from the conditional) and draws the other seven latents afresh from
the marginal, so the rotations alone tell the positive from the negatives; --share geometry keeps position,
rotations and spotlight angle and draws the three hues afresh (colour as a nuisance, as colour jitter is in
SimCLR), so that colour, the easiest cue, cannot tell the positive apart; --share pose also draws the spotlight
angle afresh (lighting as a nuisance too); --rotation-sigma (E1) draws the rotations with their own, smaller
scale, so that they tell the positive apart better than the other latents do.

Every file is written atomically. Resumable: the latents are drawn again from the flags (--n, --conditional,
--sigma, --seed, ...) and the files on disk are kept when they hold the same values; render_dataset.py then
renders only the missing, damaged or stale images (all of them when the latents changed).

    python tools/3dident/render_pairs.py data/3dident_pairs --n 60000 --conditional l2 --sigma 0.25 --size 64
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from datasets.threedident_dataset import (PAIR_PARTS, PAIRS_FILE, STATS_FILE, image_paths,  # noqa: E402
                                          write_image_stats)
from datasets.threedident_latents import (CONDITIONALS, N_BOX_COLUMNS, POSITION, ROTATION,  # noqa: E402
                                          SPOTLIGHT_ANGLE, build_latent_space, select_columns)
from generate_latents import raw_to_scene  # noqa: E402
from image_stats import channel_stats  # noqa: E402
from io_utils import atomic_write  # noqa: E402
from render_dataset import add_render_flags, render_folder, render_processes  # noqa: E402


# --share: the latents (columns) a positive shares with its anchor; the others are drawn afresh from the marginal
SHARES = {"all": tuple(range(N_BOX_COLUMNS)), "rotations": ROTATION,
          "geometry": (*POSITION, *ROTATION, SPOTLIGHT_ANGLE), "pose": (*POSITION, *ROTATION)}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Render exact positive pairs (anchors/, positives/, pairs.json) "
                                                 "for main_3dident.py --pairs rendered.")
    parser.add_argument("folder", help="Pair folder (created if missing).")
    parser.add_argument("--n", type=int, default=60000, help="Number of pairs (60000: 120000 renders).")
    parser.add_argument("--conditional", default="l2", choices=CONDITIONALS,
                        help="Conditional of z̃ given z: l2 Normal, l1 Laplace, l3 generalized normal p=3 (l2, the "
                             "paper's row); train with the same --non-periodical-conditional.")
    parser.add_argument("--sigma", type=float, default=0.1,
                        help="Its scale: σ of the Normal, λ of the Laplace, in latent units of [-1, 1] (0.1 as "
                             "main_3dident's --sigma; the research brief proposes 0.2-0.3 for exact pairs).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the latents (0; another one for a second folder).")
    parser.add_argument("--share", default="all", choices=SHARES,
                        help="Latents a positive shares with its anchor: all (the paper's conditional; the default); "
                             "rotations, geometry or pose (warm-up aids, NOT the paper's method: only α, β, γ; "
                             "position, rotations and spotlight angle; or position and rotations; the other latents "
                             "drawn afresh from the marginal; for a first training phase only).")
    parser.add_argument("--rotation-sigma", type=float, default=None,
                        help="Scale of the rotations' conditional (default: --sigma, the paper's). Another value is "
                             "a warm-up aid, NOT the paper's method (e.g. 0.1 with --sigma 0.3: the rotations tell "
                             "the positive apart best); for a first training phase only.")
    add_render_flags(parser)
    return parser


def sample_pairs(n: int, conditional: str = "l2", sigma: float = 0.1, seed: int = 0, share: str = "all",
                 rotation_sigma: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z, z̃), each (n, 10) float32: z ~ uniform on [-1, 1]^10, z̃ ~ the truncated `conditional` around z with
    scale `sigma` (main_3dident.py's latent model), from the torch RNG seeded with `seed` (the global RNG is left
    as it was). With `share` other than "all" the columns of z̃ not in SHARES[share] are drawn afresh from the
    marginal (after z and z̃, so the shared columns are those of "all"); with `rotation_sigma` the ROTATION columns
    come from the conditional of that scale (drawn last). ValueError for a bad conditional, scale or share."""
    if share not in SHARES:
        raise ValueError(f"share must be one of {tuple(SHARES)}, got {share!r}")
    space = build_latent_space(select_columns(non_periodic=True), conditional, sigma)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = space.sample_marginal(n)
        z_tilde = space.sample_conditional(z, n)
        if share != "all":
            fresh = space.sample_marginal(n)
            fresh[:, list(SHARES[share])] = z_tilde[:, list(SHARES[share])]
            z_tilde = fresh
        if rotation_sigma is not None:
            rotations = build_latent_space(select_columns(non_periodic=True), conditional, rotation_sigma)
            z_tilde[:, list(ROTATION)] = rotations.sample_conditional(z, n)[:, list(ROTATION)]
    return z.numpy(), z_tilde.numpy()


def save_npy(path: Path, array: np.ndarray) -> None:
    """`array` to `path` atomically, unless the file already holds exactly these values (its images stay valid)."""
    if path.is_file():
        on_disk = np.load(path)
        if on_disk.dtype == array.dtype and np.array_equal(on_disk, array):
            return
    atomic_write(path, lambda f: np.save(f, array))


def write_pair_folder(folder: str | os.PathLike, n: int, conditional: str = "l2", sigma: float = 0.1, seed: int = 0,
                      size: int = 224, batch_size: int = 64, device: str = "cpu", share: str = "all",
                      rotation_sigma: float | None = None, processes: int = 1, threads: int = 0) -> int:
    """Draw the pairs, write their latents and pairs.json, render every missing, damaged or stale image and, when
    any was rendered, the anchors' image statistics; returns how many images were rendered."""
    folder = Path(folder)
    z, z_tilde = sample_pairs(n, conditional, sigma, seed, share, rotation_sigma)
    for part, raw in zip(PAIR_PARTS, (z, z_tilde)):
        (folder / part).mkdir(parents=True, exist_ok=True)
        save_npy(folder / part / "raw_latents.npy", raw)
        save_npy(folder / part / "latents.npy", raw_to_scene(raw))
    spec = {"n": n, "conditional": conditional, "sigma": sigma, "seed": seed, "size": size, "share": share,
            "rotation_sigma": sigma if rotation_sigma is None else rotation_sigma}
    atomic_write(folder / PAIRS_FILE, lambda f: f.write((json.dumps(spec, indent=2) + "\n").encode()))
    rendered = sum(render_folder(folder / part, size, batch_size, device, processes=processes, threads=threads)
                   for part in PAIR_PARTS)
    if rendered or not (folder / STATS_FILE).is_file():
        mean, std = channel_stats(image_paths(folder / PAIR_PARTS[0], n))
        write_image_stats(folder / STATS_FILE, mean, std, n)
    return rendered


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    rotation_sigma = args.sigma if args.rotation_sigma is None else args.rotation_sigma
    if min(args.n, args.size, args.batch_size) < 1 or not args.sigma > 0 or not rotation_sigma > 0:
        raise SystemExit("error: --n, --size and --batch-size must be >= 1, --sigma and --rotation-sigma > 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        rendered = write_pair_folder(args.folder, args.n, args.conditional, args.sigma, args.seed, args.size,
                                     args.batch_size, args.device, args.share, args.rotation_sigma,
                                     render_processes(args), args.threads)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    seconds = time.perf_counter() - start
    z, z_tilde = (np.load(Path(args.folder) / part / "raw_latents.npy") for part in PAIR_PARTS)
    print(f"{args.n} pairs ({args.conditional}, sigma {args.sigma}, seed {args.seed}) in {args.folder}: rendered "
          f"{rendered} images of {args.size}x{args.size} in {seconds:.1f} s; z̃ − z has a std of "
          f"{(z_tilde - z).std(0).mean():.3f} per latent (mean over the 10)")


if __name__ == "__main__":
    main()
