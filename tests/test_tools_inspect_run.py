"""tools/inspect_run.py: which latent each output encodes, on known maps and on a real run folder."""
import numpy as np
import torch

import main_mlp
from tools import inspect_run


def test_a_permutation_with_signs_gives_one_output_per_latent():
    z = torch.rand(2000, 3)
    corr = inspect_run.correlations(z, torch.stack([-2 * z[:, 2], z[:, 0] + 1, 0.5 * z[:, 1]], 1))
    np.testing.assert_allclose(corr[[0, 1, 2], [1, 2, 0]], 1.0, atol=1e-6)
    assert inspect_run.diagnose(corr, 0.9) == ["every latent has an output of its own"]


def test_a_missing_latent_and_a_shared_output_are_named():
    z = torch.rand(2000, 3)
    hz = torch.stack([z[:, 0], (z[:, 0] - 0.5).abs(), z[:, 1] + 0.01 * z[:, 2]], 1)  # latent 2 is lost
    lines = inspect_run.diagnose(inspect_run.correlations(z, hz), 0.9)
    assert lines[0].startswith("latent 2: not encoded") and any(line.startswith("output 2: shared") for line in lines)


def test_inspects_a_saved_run(tmp_path, capsys):
    main_mlp.main(main_mlp.get_args_parser().parse_args(
        ["--n", "2", "--batch-size", "32", "--n-steps", "3", "--more-unsupervised", "1", "--only-unsupervised",
         "--n-log-steps", "5", "--encoder-scale", "0.1", "--num-eval-batches", "1", "--seed", "0",
         "--save-dir", str(tmp_path)]))
    inspect_run.main(inspect_run.get_args_parser().parse_args([str(tmp_path), "--samples", "500"]))
    out = capsys.readouterr().out
    assert "rows: latents, columns: outputs" in out and "output std:" in out
