"""benchmarks/bench_3dident_loader.py on a tiny rendered folder: positive rates, stage shares summing to 1, the CPU
recipe's step timed with the same losses both ways (properties of the output, not timings)."""
import numpy as np
import pytest

from benchmarks import bench_3dident_loader as bench
from datasets.threedident_dataset import CACHE_FILE, image_name, load_raw_latents


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

    result = bench.measure(folder, batch_size=4, batches=2, prefetch_factors=(), cache=True)  # the cache, built here
    assert (folder / CACHE_FILE).is_file()
    assert set(result["stage_s"]) == set(bench.STAGES)
    assert all(s > 0 for s in result["stage_s"].values())
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert set(result["rates"]) == {"stages summed (main process)", "main process (num_workers=0)", bench.ONE_WORKER}
    assert all(r > 0 and np.isfinite(r) for r in result["rates"].values())
    assert all(s > 0 for s in result["startup_s"].values())
    batch = next(iter(bench.open_stream(folder, 4)))
    transfer = bench.transfer_seconds(batch, batches=2)
    assert transfer["handoff"] > 0 and transfer["normalise"] > 0  # device-side, timed apart
    assert "normalise" not in bench.STAGES


def test_the_cpu_recipe_is_timed_on_the_same_batches_both_ways(tmp_path, in_process_loading):
    folder = bench.prepare_folder(tmp_path, renders=8, size=16)
    runs = [bench.recipe_seconds_per_step(folder, tmp_path / str(cache), steps=1, cache=cache) for cache in (0, 1)]
    assert all(seconds > 0 for seconds, _ in runs)
    assert runs[0][1] == runs[1][1] and len(runs[0][1]) == 2  # steps 0 and 1 logged, the same losses
    assert (folder / CACHE_FILE).is_file()


def test_workers_needed_is_demand_over_one_workers_rate():
    assert bench.workers_needed(100.0, 512, 150.0) == (pytest.approx(512 / 0.15), 35)
    assert bench.workers_needed(1e6, 512, 150.0)[1] == 1
