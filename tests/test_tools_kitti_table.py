"""tools/kitti_table.py: the table builder on fixture rows, and a resumable run of tiny cells."""
import pytest
import torch

import main_kitti
from tools import kitti_table
from tools.kitti_masks.make_synthetic import WalkConfig, write_synthetic


def test_table_counts_seeds_and_marks_incomplete_cells():
    rows = [{"model": "infonce_l1_box", "max_delta_t": "1", "seed": str(s), "mcc": mcc}
            for s, mcc in enumerate(["0.9", "0.8", "0.7"])]
    rows.append({"model": "slowvae", "max_delta_t": "5", "seed": "0", "mcc": "0.5"})
    text = kitti_table.markdown_table(rows, ["infonce_l1_box", "slowvae"], [1, 5], seeds=3)
    l1_box, slowvae = text.splitlines()[2:]
    assert "0.800 ± 0.082 (3/3 seeds) |" in l1_box and "— (0/3 seeds), incomplete" in l1_box
    assert "— (0/3 seeds), incomplete" in slowvae and "0.500 ± 0.000 (1/3 seeds), incomplete" in slowvae


def test_cells_run_once_and_the_table_is_rewritten(tmp_path, monkeypatch):
    write_synthetic(str(tmp_path / "data"), 8, seed=0, config=WalkConfig(max_len=12))
    monkeypatch.setattr(kitti_table, "RECIPE", ("--max-iter", "2", "--log-step", "1", "--num-workers", "0",
                                                "--batch-size", "8"))
    ran = []
    original = kitti_table.run_cell
    monkeypatch.setattr(kitti_table, "run_cell", lambda *a: ran.append(a[:3]) or original(*a))
    argv = ["--data-dir", str(tmp_path / "data"), "--models", "untrained", "infonce_l1_box", "slowvae", "--delta-ts", "1",
            "--seeds", "0", "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kitti_table.main(kitti_table.get_args_parser().parse_args(argv))
        kitti_table.main(kitti_table.get_args_parser().parse_args(argv))  # resumed: nothing left to run
    finally:
        torch.set_num_threads(threads)
    assert ran == [("untrained", 1, 0), ("infonce_l1_box", 1, 0), ("slowvae", 1, 0)]
    rows = kitti_table.read_runs(tmp_path / "out" / "runs.csv")
    assert [r["model"] for r in rows] == ["untrained", "infonce_l1_box", "slowvae"]
    untrained = (tmp_path / "runs" / "outputs" / "untrained_dt1" / "0" / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in untrained[1:]] == ["0"]  # --max-iter 0 overrides the recipe's
    assert all(0 <= float(r["mcc"]) <= 1 for r in rows)
    assert "(1/1 seeds) |" in (tmp_path / "out" / "kitti_table.md").read_text()


def test_max_iter_and_batch_size_override_the_recipe_but_not_the_untrained_iterations_or_slowvae_batch():
    parse = kitti_table.get_args_parser().parse_args
    args = parse(["--data-dir", "d", "--max-iter", "6000", "--batch-size", "256"])
    flags = main_kitti.get_args_parser().parse_args(kitti_table.cell_flags("infonce_l1_box", 1, 0, args))
    untrained = main_kitti.get_args_parser().parse_args(kitti_table.cell_flags("untrained", 1, 0, args))
    default = kitti_table.cell_flags("infonce_l1_box", 1, 0, parse(["--data-dir", "d"]))
    recipe = main_kitti.get_args_parser().parse_args(default)
    assert (flags.max_iter, untrained.max_iter, recipe.max_iter) == (6000, 0, 3000)
    slowvae = main_kitti.get_args_parser().parse_args(kitti_table.cell_flags("slowvae", 1, 0, args))
    assert (flags.batch_size, untrained.batch_size, recipe.batch_size, slowvae.batch_size) == (256, 256, 128, 64)


def test_metrics_add_columns_and_tables_and_need_their_own_out(tmp_path):
    write_synthetic(str(tmp_path / "data"), 8, seed=0, config=WalkConfig(max_len=12))
    argv = ["--data-dir", str(tmp_path / "data"), "--models", "untrained", "--delta-ts", "1", "--seeds", "0",
            "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs"), "--metrics", "sap", "dci"]
    args = kitti_table.get_args_parser().parse_args(argv)
    assert main_kitti.get_args_parser().parse_args(kitti_table.cell_flags("untrained", 1, 0, args)).metrics == [
        "sap", "dci"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kitti_table.main(args)
    finally:
        torch.set_num_threads(threads)
    row, = kitti_table.read_runs(tmp_path / "out" / "runs.csv")
    assert list(row)[-4:] == ["sap", "dci_disentanglement", "dci_completeness", "dci_informativeness"]
    table = (tmp_path / "out" / "kitti_table.md").read_text()
    assert "| model | MCC, max Δt 1 frames |" in table and "| model | dci_completeness, max Δt 1 frames |" in table
    with pytest.raises(SystemExit, match="other columns"):
        kitti_table.main(kitti_table.get_args_parser().parse_args(argv[:-3]))  # no --metrics


def test_cuda_reaches_each_cell_but_not_its_recorded_flags(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(main_kitti, "main", lambda argv: calls.append(argv) or [{"mcc": 0.5, "r2": 0.4}])
    args = kitti_table.get_args_parser().parse_args(["--data-dir", "d", "--runs-dir", str(tmp_path), "--cuda"])
    row = kitti_table.run_cell("infonce_l1_box", 1, 0, args)
    assert main_kitti.get_args_parser().parse_args(calls[0]).cuda and "--cuda" not in row["flags"]
