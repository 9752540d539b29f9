"""tools/3dident/cpu_table.py: parsing the test line, the table on fixture runs (mean ± std, the lowest latents),
and a tiny end-to-end run in which a short unsupervised training raises the held-out R² above the untrained
encoder's (resumable: a second call runs nothing)."""
import contextlib
import io
import json
import runpy
import sys

import numpy as np
import pytest
import torch

import encoders
from tests.test_threedident_main import TOOLS, import_tool

cpu_table = import_tool("cpu_table")
cpu_demo = import_tool("cpu_demo")


@pytest.fixture
def steps_in_process(monkeypatch, in_process_loading):
    """cpu_table's steps (latents, renders, image statistics, main_3dident) run in the test's process, as the
    scripts' own `__main__`, echoed like cpu_demo.run does: each subprocess would import torch afresh (seconds).
    One faiss thread, as in tests/test_threedident_main.py."""
    def run(command: list[str], env: dict) -> str:
        print("$", " ".join(command), flush=True)
        out = io.StringIO()
        monkeypatch.setattr(sys, "argv", [command[1], *command[2:]])
        monkeypatch.syspath_prepend(str(TOOLS))
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path(str(cpu_table.REPO / command[1]), run_name="__main__")
        except SystemExit as e:
            if e.code:
                raise SystemExit(f"error: step failed:\n{e.code}") from None
        print(out.getvalue(), end="")
        return out.getvalue()

    common = cpu_table.common_flags
    monkeypatch.setattr(cpu_table, "common_flags", lambda work: [*common(work), "--faiss-omp-threads", "1"])
    monkeypatch.setattr(cpu_table, "run", run)
    monkeypatch.setattr(cpu_demo, "run", run)


def test_parse_test_reads_scores_and_per_latent_r2():
    line = ("test set: 8 images, in order | R2 0.5000 | MCC 0.6000 | MSE [0.1, 0.2] | lin. MSE [0.1, 0.2] | "
            "R2 per latent [0.900 0.100]")
    assert cpu_table.parse_test("noise\n" + line + "\n") == (0.5, 0.6, [0.9, 0.1])
    with pytest.raises(SystemExit, match="no test scores"):
        cpu_table.parse_test("test set: crashed")


def fixture_run(row: str, seed: int, r2: float, per_latent: list[float]) -> dict:
    return {"row": row, "seed": str(seed), "r2": str(r2), "mcc": "0.5", "r2_latents": json.dumps(per_latent),
            "steps": "3000", "batch_size": "256", "train_s": "100", "flags": ""}


def test_table_averages_seeds_and_names_the_lowest_latents():
    low = [0.9] * 10
    low[3], low[5] = 0.1, 0.3
    runs = [fixture_run("l2_box", 0, 0.8, low), fixture_run("l2_box", 1, 0.6, low),
            fixture_run("untrained", 0, 0.1, [0.1] * 10)]
    lines = cpu_table.table(runs).splitlines()
    assert len(lines) == 4  # header, rule, the two rows that have runs (in ROWS order)
    assert lines[2].startswith("| untrained encoder |")
    best = lines[3]
    assert "| MCC 98.31 |" in best and "| 0.700 ± 0.100 |" in best and "| 2 | 3000 × 256 |" in best
    assert "α 0.10, γ 0.30, x 0.90" in best


@pytest.mark.slow
def test_tiny_run_learns_and_resumes(tmp_path, capsys, steps_in_process):
    """16-px renders, 80 steps of L2 InfoNCE with the box: held-out R² well above the untrained encoder's
    (0.234 against -0.012 when this test was written)."""
    argv = ["--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--rows", "untrained", "l2_box",
            "--n-train", "512", "--n-test", "256", "--size", "16", "--iterations", "80", "--batch-size", "64"]
    cpu_table.main(argv)
    runs = {r["row"]: r for r in cpu_table.read_runs(tmp_path / "out" / "runs.csv")}
    assert set(runs) == {"untrained", "l2_box"}
    assert float(runs["l2_box"]["r2"]) > float(runs["untrained"]["r2"]) + 0.15
    assert len(json.loads(runs["l2_box"]["r2_latents"])) == 10
    assert (tmp_path / "out" / "per_latent_r2.png").stat().st_size > 0
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    assert (tmp_path / "out" / "metrics" / "l2_box_seed0.csv").read_text().startswith("step,loss")
    capsys.readouterr()
    cpu_table.main(argv)  # finished rows are skipped; nothing rendered, so the image statistics are kept
    out = capsys.readouterr().out
    assert "main_3dident.py" not in out and "image_stats.py" not in out and "rendered 0 images" in out
    assert len(cpu_table.read_runs(tmp_path / "out" / "runs.csv")) == 2


def test_readout_tells_absent_from_nonlinear_latents():
    """z0 linear in h; z1 as a point on a circle (the linear fit misses part of it, k-NN recovers it); z2 absent."""
    readout = import_tool("readout")
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (4000, 3))
    h = np.stack([2 * z[:, 0], np.cos(np.pi * z[:, 1]), np.sin(np.pi * z[:, 1]), rng.normal(size=4000)], 1)
    scores = readout.readout_r2(z, h)
    assert scores["linear"][0] > 0.99 and scores["knn"][0] > 0.95
    assert scores["knn"][1] > 0.85 and scores["knn"][1] > scores["linear"][1] + 0.2
    assert abs(scores["linear"][2]) < 0.02 and scores["knn"][2] < 0.05


def test_output_spectrum_counts_collapsed_dimensions():
    """Five outputs built from three independent signals: two eigenvalues near 0, the sum is the output count."""
    readout = import_tool("readout")
    signals = np.random.default_rng(0).normal(size=(5000, 3))
    h = np.column_stack([signals, signals[:, 0] - 2 * signals[:, 1], 0.5 * signals[:, 2] + 0.01 * signals[:, 0]])
    spectrum = readout.output_spectrum(h)
    assert spectrum.sum() == pytest.approx(5) and (np.diff(spectrum) <= 1e-12).all()
    assert (spectrum[:3] > 0.5).all() and (spectrum[3:] < 1e-3).all()


def test_readout_mlp_recovers_a_nonlinear_latent():
    """z0 as the angle of a point on a circle in h: the linear readout misses part of it, the MLP's does not;
    z1 is absent from h."""
    readout = import_tool("readout")
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (4000, 2))
    h = np.column_stack([np.cos(np.pi * z[:, 0]), np.sin(np.pi * z[:, 0]), rng.normal(size=4000)])
    scores = readout.readout_r2(z, h, mlp=True)
    assert scores["mlp"][0] > 0.95 and scores["mlp"][0] > scores["linear"][0] + 0.2 and scores["mlp"][1] < 0.05


def test_readout_layers_tap_the_head_of_the_conv_encoder():
    """features: the pooled 4w channels; hidden: the 256 units; pre_box: the logits whose sigmoid · b is f(x)."""
    readout = import_tool("readout")
    torch.manual_seed(0)
    f = torch.nn.Sequential(encoders.get_conv_encoder(10, width=4), encoders.BoxNormalization(10, 2.0, True))
    recorded, handles = readout.record_layers(f, list(readout.LAYERS))
    x = torch.rand(3, 3, 16, 16)
    output = f(x)
    for handle in handles:
        handle.remove()
    f(x)
    shapes = {name: tuple(batches[0].shape) for name, batches in recorded.items()}
    assert shapes == {"features": (3, 16), "hidden": (3, 256), "pre_box": (3, 10), "output": (3, 10)}
    assert all(len(batches) == 1 for batches in recorded.values())
    assert torch.allclose(torch.sigmoid(recorded["pre_box"][0]) * 2.0, output.detach())
    with pytest.raises(ValueError, match="trained encoder"):
        readout.layer_taps(torch.nn.Identity())
    assert readout.record_layers(torch.nn.Identity(), []) == ({}, [])  # without --layers any encoder is read
