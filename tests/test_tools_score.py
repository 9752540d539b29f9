"""tools/score.py: every score of a good .npz file, the flags naming arrays, and a one-line error for each bad
file (unreadable, not .npz, missing arrays, mismatched lengths, NaNs, constant columns)."""
from pathlib import Path

import numpy as np
import pytest

import disentanglement_utils as du
from tools import score

RNG = np.random.default_rng(0)
Z = RNG.uniform(-1, 1, size=(400, 3))


def write(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_good_file_prints_every_score(tmp_path, capsys):
    path = write(tmp_path / "e.npz", z=Z, h=-2 * Z[:, [1, 2, 0]])
    score.main([path])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: 400 samples, latents 3, representation 3"
    scores = {line.split()[0]: float(line.split()[1]) for line in out[1:]}
    keys = [key for keys, _ in du.METRICS.values() for key in keys]
    assert list(scores) == ["r2", "mcc", *keys]
    for key in ("r2", "mcc", "mcc_spearman", "dci_disentanglement", "dci_completeness", "dci_informativeness"):
        assert scores[key] == pytest.approx(1.0, abs=1e-4), key


def test_flags_name_other_arrays_and_pick_scores(tmp_path, capsys):
    path = write(tmp_path / "e.npz", factors=Z, codes=Z[:, 0], unused=np.zeros(3))
    score.main([path, "--latents", "factors", "--representation", "codes", "--metrics", "sap", "mig"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("400 samples, latents 3, representation 1") and len(lines) == 5
    assert lines[3].split()[0] == "sap" and lines[4].startswith("mig") and "n/a: MIG needs" in lines[4]


BAD = {  # name → (arrays or raw bytes, the error's words)
    "missing": ({"z": Z, "x": Z}, "no representation array any of h, hz, representation, codes (arrays: z, x)"),
    "lengths": ({"z": Z, "h": Z[:300]}, "'z' has 400 rows, 'h' 300"),
    "nan": ({"z": Z, "h": np.where(Z > 0.9, np.nan, Z)}, "'h' has NaN or infinite values"),
    "constant": ({"z": np.column_stack([Z, np.ones(400)]), "h": Z}, "'z' has constant columns [3]"),
    "strings": ({"z": Z, "h": np.array(["a"] * 400)}, "'h' must be a 1-d or 2-d numeric array"),
    "too_few": ({"z": Z[:5], "h": Z[:5]}, "5 samples are too few"),
    "garbage": (b"PK\x03\x04 not a zip", "cannot read"),
    "npy": (None, "not a .npz file"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_file_is_a_one_line_error(tmp_path, case):
    content, message = BAD[case]
    path = tmp_path / "bad.npz"
    if isinstance(content, dict):
        write(path, **content)
    elif content is None:
        with open(path, "wb") as f:
            np.save(f, Z)
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as e:
        score.main([str(path), "--metrics", "sap"])
    assert str(e.value).startswith("error: ") and message in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_no_file_are_one_line_errors(tmp_path):
    for argv, message in (([str(tmp_path / "none.npz")], "cannot read"), ([], "give a .npz file")):
        with pytest.raises(SystemExit) as e:
            score.main(argv)
        assert message in str(e.value) and "\n" not in str(e.value)


def test_demo_scores_the_known_cases(capsys):
    score.main(["--demo", "--n", "400", "--k", "3", "--metrics", "dci", "sap"])
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("score"))
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1:]}
    assert list(rows) == ["r2", "mcc", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"]
    identity, permutation = float(rows["mcc"][0]), float(rows["mcc"][1])
    assert identity == permutation == 1.0 and float(rows["r2"][2]) == 1.0 and float(rows["mcc"][2]) < 0.95
