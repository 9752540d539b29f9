"""tools/3dident/gpu_recipe.py at a tiny size on the CPU: it renders, trains through main_3dident, writes a
per-latent table whose R² is the mean of its latents' R², reads the image caches it builds, skips a row that would
pass the budget, and resumes."""
import importlib
import re
import sys
from pathlib import Path

import numpy as np

from datasets.threedident_dataset import CACHE_FILE

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "3dident"
sys.path.insert(0, str(TOOLS))
gpu_recipe = importlib.import_module("gpu_recipe")
sys.path.remove(str(TOOLS))

TINY = ["--device", "cpu", "--size", "16", "--n-train", "48", "--n-test", "24", "--iterations", "2",
        "--batch-size", "8", "--n-eval-samples", "16", "--n-log-steps", "1", "--workers", "1", "--encoder", "conv"]


def table_rows(text: str) -> dict[str, list[str]]:
    """Row description → its cells, from the Markdown table of `text`."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["row", "R²", "MCC"] and len(header) == 3 + 10 + 3
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}


def test_tiny_recipe_writes_the_per_latent_table_and_resumes(tmp_path, in_process_loading, capsys):
    out, work = tmp_path / "gpu_3dident.md", tmp_path / "work"
    gpu_recipe.main([*TINY, "--work-dir", str(work), "--out", str(out)])
    rows = table_rows(out.read_text())
    names = {key: gpu_recipe.ROWS[key][0] for key in ("untrained", "l2_box", "supervised")}
    assert list(rows) == list(names.values())
    for key, name in names.items():
        r2, mcc, *latents = [float(v) for v in rows[name][:12]]
        assert np.isclose(r2, np.mean(latents), atol=2e-3) and 0 <= mcc <= 1  # R²: the uniform mean over latents
        assert rows[name][12] == ("—" if key == "untrained" else "2 × 8")
    assert (work / "runs" / "l2_box_seed0" / "final_scores.json").is_file()
    assert all((work / name / CACHE_FILE).is_file() for name in ("train", "test"))  # the runs read the image caches
    assert "plan: 48 training + 24 held-out renders of 16 px" in capsys.readouterr().out

    gpu_recipe.main([*TINY, "--work-dir", str(work), "--out", str(out), "--rows", "l2_box", "supervised",
                     "--budget-s", "0"])
    again = table_rows(out.read_text())
    assert again[names["l2_box"]] == rows[names["l2_box"]][:13] + [again[names["l2_box"]][13]] + [
        rows[names["l2_box"]][14]]  # the finished run is kept: the same scores
    assert re.fullmatch(r"not run: \d+ s \+ \d+ s would pass the budget of 0 s", again[names["supervised"]][0])
    assert "rendered 0 of 48 images" in capsys.readouterr().out
