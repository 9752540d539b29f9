"""benchmarks/bench_3dident_loader.py on a tiny rendered folder: positive rates, stage shares summing to 1
(properties of the output, not timings)."""
import numpy as np
import pytest

from benchmarks import bench_3dident_loader as bench
from datasets.threedident_dataset import image_name, load_raw_latents


@pytest.mark.slow
def test_measure_gives_positive_rates_and_shares_summing_to_one(tmp_path):
    folder = bench.prepare_folder(tmp_path, renders=16, size=32, index_size=40)
    raw = load_raw_latents(folder, 10)
    assert raw.shape == (40, 10)
    rendered = tmp_path / "renders-32px-16"
    assert np.array_equal(raw[:16], load_raw_latents(rendered, 10))
    assert (folder / "images" / image_name(37, 40)).read_bytes() == \
        (rendered / "images" / image_name(37 % 16, 16)).read_bytes()
    assert bench.prepare_folder(tmp_path, renders=16, size=32, index_size=40) == folder  # reused

    result = bench.measure(folder, batch_size=4, batches=2, prefetch_factors=())
    assert set(result["stage_s"]) == set(bench.STAGES)
    assert all(s > 0 for s in result["stage_s"].values())
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert {"main process (num_workers=0)", "1 worker (num_workers=1, prefetch_factor=2)"} <= set(result["rates"])
    assert all(r > 0 and np.isfinite(r) for r in result["rates"].values())
    assert all(s > 0 for s in result["startup_s"].values()) and result["handoff_s"] > 0
    assert "normalise" not in bench.STAGES and result["normalise_s"] > 0  # device-side, timed apart


def test_workers_needed_is_demand_over_one_workers_rate():
    assert bench.workers_needed(100.0, 512, 150.0) == (pytest.approx(512 / 0.15), 35)
    assert bench.workers_needed(1e6, 512, 150.0)[1] == 1
