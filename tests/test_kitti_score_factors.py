"""tools/kitti_masks/score_factors.py: the walkers' factors file matches the pickle, and the finished cells of a
kitti_table run are scored against the chosen factors, once each."""
import numpy as np
import pytest
import torch

from tools import kitti_table
from tools.kitti_masks import make_walkers, score_factors
from training_utils import atomic_save, load_checkpoint

N_SEQUENCES, MAX_LEN = 8, 12


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walkers")
    make_walkers.main(["--data-dir", str(folder), "--n-sequences", str(N_SEQUENCES), "--max-len", str(MAX_LEN)])
    return str(folder)


def test_factor_dataset_holds_the_chosen_factors_in_frame_order(data_dir):
    _, _, factors = make_walkers.generate(N_SEQUENCES, 0, MAX_LEN)
    dataset = score_factors.factor_dataset(data_dir, ["depth", "lateral"])
    assert dataset.factor_names == ("depth", "lateral")
    np.testing.assert_allclose(dataset.latents.numpy(), np.concatenate(factors)[:, [1, 0]], rtol=1e-6)
    keys, truth = dataset.eval_sample(5, np.random.default_rng(0))
    np.testing.assert_array_equal(truth, dataset.latents[keys].double().numpy())


def test_missing_or_foreign_factors_file_is_a_one_line_error(tmp_path, data_dir):
    other = tmp_path / "other"
    make_walkers.main(["--data-dir", str(other), "--n-sequences", str(N_SEQUENCES + 1), "--max-len", str(MAX_LEN)])
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / make_walkers.FACTORS_FILE).write_bytes((other / make_walkers.FACTORS_FILE).read_bytes())
    (tmp_path / "mixed" / "kitti_peds_v2.pickle").write_bytes(open(f"{data_dir}/kitti_peds_v2.pickle", "rb").read())
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / make_walkers.FACTORS_FILE).write_bytes(b"not an npz")
    for folder, message in [(tmp_path, "not found"), (tmp_path / "mixed", "sequence lengths"),
                            (tmp_path / "corrupt", "not a walker_factors.npz file")]:
        with pytest.raises(SystemExit) as e:
            score_factors.main(["--data-dir", str(folder), "--runs-dir", str(tmp_path), "--out", str(tmp_path / "o")])
        assert message in str(e.value.code) and "\n" not in str(e.value.code)


def test_finished_cells_are_scored_once_and_unfinished_ones_skipped(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(kitti_table, "RECIPE", ("--max-iter", "2", "--log-step", "1", "--num-workers", "0",
                                                "--batch-size", "8"))
    runs = str(tmp_path / "runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kitti_table.main(kitti_table.get_args_parser().parse_args(
            ["--data-dir", data_dir, "--models", "infonce_l1_box", "infonce_l2", "--delta-ts", "1", "--seeds", "0",
             "--out", str(tmp_path / "table"), "--runs-dir", runs]))
        unfinished = tmp_path / "runs" / "ckpt" / "infonce_l2_dt1" / "0" / "last"
        state = load_checkpoint(unfinished)
        atomic_save({**state, "step": 1}, unfinished)  # as if written at a --save-step before the end
        argv = ["--data-dir", data_dir, "--runs-dir", runs, "--delta-ts", "1", "--seeds", "0",
                "--out", str(tmp_path / "factors")]
        score_factors.main(argv)
        score_factors.main(argv)  # resumed: nothing new to score
    finally:
        torch.set_num_threads(threads)
    rows = kitti_table.read_runs(tmp_path / "factors" / "runs.csv")
    assert [(r["model"], r["seed"], r["factors"]) for r in rows] == [("infonce_l1_box", "0", "lateral depth height")]
    assert 0 <= float(rows[0]["mcc"]) <= 1 and len(rows[0]["matched_correlations"].split()) == 3
    table = (tmp_path / "factors" / "factors_table.md").read_text()
    assert "(1/1 seeds) |" in table and "InfoNCE L2 (Normal), unbounded | — (0/1 seeds), incomplete" in table
