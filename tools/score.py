"""Score any representation against its ground-truth latents: linear R², MCC and every score of
disentanglement_utils.METRICS (nonlinear R², Spearman MCC, DCI, MIG, SAP, modularity; docs/metrics.md).

The file is a numpy .npz with two arrays of the same number of rows n: the latents (n, k), named z, latents or
factors, and the representation (n, d), any width, named h, hz, representation or codes (or say which with
--latents / --representation). Rows are samples, in any order; a 1-d array is one column. Everything is
fitted on the first half of the rows and scored on the second where a score fits anything, so shuffle the
rows first if they are ordered. --demo scores the known cases instead (identity, permutation, rotation, ...)
to show what each score can and cannot tell.

    python tools/score.py embeddings.npz
    python tools/score.py embeddings.npz --latents factors --representation codes --metrics dci mig
    python tools/score.py --demo
"""
from __future__ import annotations

import argparse
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import disentanglement_utils as du  # noqa: E402
from training_utils import die  # noqa: E402

LATENT_NAMES = ("z", "latents", "factors")
REPRESENTATION_NAMES = ("h", "hz", "representation", "codes")
LINEAR = ("r2", "mcc")  # linear R² (split in halves) and Pearson MCC, as the training scripts log them


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("score.py", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="A .npz file with the latents and the representation.")
    parser.add_argument("--latents", default=None,
                        help=f"Name of the latents array (default: the first of {', '.join(LATENT_NAMES)}).")
    parser.add_argument("--representation", default=None, help="Name of the representation array (default: "
                        f"the first of {', '.join(REPRESENTATION_NAMES)}).")
    parser.add_argument("--metrics", nargs="+", default=list(du.METRICS), choices=list(du.METRICS), metavar="NAME",
                        help=f"Scores besides linear R² and MCC (default all: {', '.join(du.METRICS)}).")
    parser.add_argument("--demo", action="store_true",
                        help="Score the known cases (no file): what each score can and cannot tell.")
    parser.add_argument("--n", type=int, default=10_000, help="--demo: samples (10000).")
    parser.add_argument("--k", type=int, default=10, help="--demo: latents (10).")
    parser.add_argument("--seed", type=int, default=0, help="--demo: seed of the samples (0).")
    return parser


def pick(arrays, name: str | None, defaults: tuple[str, ...], what: str) -> str:
    names = [name] if name else [n for n in defaults if n in arrays]
    if not names or names[0] not in arrays:
        wanted = repr(name) if name else "any of " + ", ".join(defaults)
        raise ValueError(f"no {what} array {wanted} (arrays: {', '.join(arrays) or 'none'})")
    return names[0]


def check(x: np.ndarray, name: str) -> np.ndarray:
    """x as a float64 (n, m) array; ValueError when it is not numeric, not finite or has a constant column."""
    if x.dtype.kind not in "biuf" or x.ndim not in (1, 2):
        raise ValueError(f"array {name!r} must be a 1-d or 2-d numeric array, got {x.dtype} of shape {x.shape}")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"array {name!r} has NaN or infinite values")
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0) if len(x) else []
    if len(constant):
        raise ValueError(f"array {name!r} has constant columns {constant.tolist()}")
    return x


def read_arrays(path: str, latents: str | None = None, representation: str | None = None) -> tuple[np.ndarray, ...]:
    """(z (n, k), h (n, d)) from a .npz file, checked; ValueError with a one-line reason."""
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError("not a .npz file (numpy.savez writes one)")
        with arrays:
            z_name = pick(arrays, latents, LATENT_NAMES, "latents")
            h_name = pick(arrays, representation, REPRESENTATION_NAMES, "representation")
            z_raw, h_raw = arrays[z_name], arrays[h_name]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    z, h = check(z_raw, z_name), check(h_raw, h_name)
    if len(z) != len(h):
        raise ValueError(f"{z_name!r} has {len(z)} rows, {h_name!r} {len(h)}")
    if len(z) < 10:
        raise ValueError(f"{len(z)} samples are too few to fit on one half and score on the other (10 or more)")
    return z, h


def score_all(z: np.ndarray, h: np.ndarray, metrics: list[str]) -> dict[str, float | str]:
    """Linear R², MCC and the `metrics`; a score that does not apply (e.g. MIG of a 1-d code) gives its reason."""
    scores: dict[str, float | str] = {
        "r2": du.linear_disentanglement(z, h, train_test_split=True)[0][0],
        "mcc": du.permutation_disentanglement(z, h)[0][0]}
    for name in metrics:
        try:
            scores.update(du.metric_scores(z, h, [name]))
        except ValueError as e:
            scores[name] = f"n/a: {e}"
    return scores


def demo_cases(n: int, k: int, seed: int) -> tuple[np.ndarray, dict[str, tuple[str, np.ndarray]]]:
    """z ~ U(-1, 1)^k and representations of it with known answers: name → (what it is, h)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=(n, k))
    rotation, upper = np.linalg.qr(rng.normal(size=(k, k)))
    rotation *= np.sign(np.diag(upper))  # Haar-distributed
    mixing = np.eye(k) + 0.3 * np.eye(k, k=1)
    return z, {"identity": ("h = z", z),
               "permutation": ("h = signed, scaled, permuted z", -3 * z[:, ::-1] + 1),
               "rotation": ("h = Rz, R a random rotation", z @ rotation.T),
               "mild_mixing": ("h_i = z_i + 0.3 z_(i+1)", z @ mixing.T),
               "monotone": ("h = exp(2z), elementwise", np.exp(2 * z)),
               "dropped": ("h = z without z_0", z[:, 1:]),
               "noise": ("h independent of z", rng.normal(size=(n, k)))}


def format_value(value: float | str) -> str:
    return f"{value:8.3f}" if isinstance(value, float) else f"{'n/a':>8}"


def demo(args: argparse.Namespace) -> None:
    z, cases = demo_cases(args.n, args.k, args.seed)
    print(f"z ~ U(-1, 1)^{args.k}, {args.n} samples, seed {args.seed}; fitted on the first half, scored on the "
          "second")
    for name, (what, _) in cases.items():
        print(f"  {name:<12} {what}")
    table = {name: score_all(z, h, args.metrics) for name, (_, h) in cases.items()}
    print(f"{'score':<20}" + "".join(f"{name[:11]:>12}" for name in cases))
    for key in next(iter(table.values())):
        print(f"{key:<20}" + "".join(f"{format_value(table[name][key]):>12}" for name in cases))


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    if args.demo:
        return demo(args)
    if not args.file:
        die("give a .npz file (or --demo)")
    try:
        z, h = read_arrays(args.file, args.latents, args.representation)
        scores = score_all(z, h, args.metrics)
    except ValueError as e:
        die(str(e))
    print(f"{args.file}: {len(z)} samples, latents {z.shape[1]}, representation {h.shape[1]}")
    for key, value in scores.items():
        print(f"{key:<20} {value:.4f}" if isinstance(value, float) else f"{key:<20} {value}")


if __name__ == "__main__":
    main()
