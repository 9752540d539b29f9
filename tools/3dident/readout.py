"""Is a latent absent from f(x), or only not linear in it? Per-latent R² of a linear and of a k-nearest-
neighbour readout of z from a trained encoder's output on a 3DIdent folder (both fitted on one half of the
folder, scored on the other, as main_3dident.py's R²). A latent with a low linear but a high k-NN R² is
encoded non-linearly; low in both, f has not learned it. Also printed: the spectrum of f(x)'s correlation
matrix, whose eigenvalues near 0 count the output dimensions f has collapsed (spent on no direction of its own).

Takes main_3dident.py's flags (the model's: --encoder, --box-constraint, ...; the folder; --load-model):

    python tools/3dident/readout.py --offline-dataset runs/3dident_cpu/test --load-model MODEL --encoder conv \
        --non-periodic-rotation-and-color --box-constraint learnable --no-cuda --workers 1 \
        --image-normalisation folder --image-stats runs/3dident_cpu/train/image_stats.json
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import disentanglement_utils  # noqa: E402
import main_3dident  # noqa: E402
from training_utils import die, select_device  # noqa: E402


def readout_r2(z: np.ndarray, hz: np.ndarray, neighbours: int = 10) -> dict[str, np.ndarray]:
    """Per-latent held-out R² of z from hz: "linear" (least squares) and "knn" (mean of the k nearest neighbours
    in the standardised hz), fitted on the first half of the rows, scored on the second."""
    half = len(z) // 2
    hz = (hz - hz[:half].mean(0)) / (hz[:half].std(0) + 1e-12)
    linear = disentanglement_utils.linear_disentanglement(z, hz, mode="r2", train_test_split=True)[1]
    knn = KNeighborsRegressor(neighbours).fit(hz[:half], z[:half]).predict(hz[half:])
    return {"linear": r2_score(*linear, multioutput="raw_values"),
            "knn": r2_score(z[half:], knn, multioutput="raw_values")}


def output_spectrum(hz: np.ndarray) -> np.ndarray:
    """Eigenvalues of the correlation matrix of the outputs (columns of hz), largest first; they sum to the
    number of outputs, and as many are near 0 as the outputs have collapsed dimensions."""
    return np.linalg.eigvalsh(np.corrcoef(hz, rowvar=False))[::-1]


def main(argv: list[str] | None = None) -> None:
    parser = main_3dident.get_args_parser()
    parser.description = "Per-latent R² of a linear and a k-NN readout of z from f(x) on a 3DIdent folder."
    parser.add_argument("--neighbours", type=int, default=10, help="k of the k-NN readout (10).")
    args = parser.parse_args(argv)
    if not args.load_model:
        die("--load-model is required (the encoder to read out)")
    args.mode = "test"
    layout = main_3dident.check_args(args)
    data = main_3dident.open_dataset(args, layout)
    device = select_device(not args.no_cuda)
    f = main_3dident.build_encoder(args, layout).to(device, memory_format=main_3dident.memory_format(args, device))
    main_3dident.load(f, args.load_model)
    mix = main_3dident.build_mixing(args, layout.dim, device, main_3dident.image_statistics(args))
    z, hz = main_3dident.encode(f, main_3dident.make_embed(f, mix, device, args.amp),
                                DataLoader(data, batch_size=args.batch_size, num_workers=args.workers))
    scores = readout_r2(z.numpy(), hz.numpy(), args.neighbours)
    print(f"{len(z)} images; per-latent R² (columns {list(layout.columns)})")
    for name, values in scores.items():
        print(f"{name:>6}: " + " ".join(f"{v:6.3f}" for v in values) + f" | mean {np.mean(values):.4f}")
    spectrum = output_spectrum(hz.numpy())
    print("output correlation eigenvalues: " + " ".join(f"{v:.3f}" for v in spectrum)
          + f" | {int((spectrum < 0.1).sum())} below 0.1")


if __name__ == "__main__":
    main()
