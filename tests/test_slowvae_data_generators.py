"""tools/slowvae_data: the generators write the released keys, dtypes and value grids (or subsets of them)."""
import numpy as np
import pytest

from tools.slowvae_data.dsprites import RELEASED_VALUES as DSPRITES_VALUES
from tools.slowvae_data.dsprites import make_dsprites
from tools.slowvae_data.grid import cartesian, parse_sizes, subset
from tools.slowvae_data.natural_sprites import sequences_from_csv
from tools.slowvae_data.shapes3d import RELEASED_VALUES as SHAPES3D_VALUES
from tools.slowvae_data.shapes3d import make_shapes3d, write_h5


def test_subset_and_cartesian():
    assert subset(np.arange(40), 5).tolist() == [0, 10, 20, 29, 39] and subset(np.arange(3), 3).tolist() == [0, 1, 2]
    assert cartesian([np.arange(2), np.arange(3)]).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_dsprites_has_the_released_keys_dtypes_and_values():
    data = make_dsprites((1, 3, 2, 3, 2, 2))
    assert data["imgs"].dtype == np.uint8 and data["imgs"].shape == (72, 64, 64) and data["imgs"].max() == 1
    assert data["latents_classes"].dtype == np.int64 and data["latents_values"].shape == (72, 6)
    for column, released in zip(data["latents_values"].T, DSPRITES_VALUES):
        assert set(column) <= set(released)
    assert data["latents_values"][-1].tolist() == [1.0, 3.0, 1.0, 2 * np.pi, 1.0, 1.0]
    assert data["imgs"].reshape(72, -1).sum(1).min() > 20  # every sprite is visible


def test_shapes3d_labels_are_released_values_and_objects_differ_by_shape():
    data = make_shapes3d((1, 1, 1, 1, 4, 1))
    assert data["images"].shape == (4, 64, 64, 3) and data["images"].dtype == np.uint8
    assert data["labels"][:, 4].tolist() == [0, 1, 2, 3]
    for column, released in zip(data["labels"].T, SHAPES3D_VALUES):
        assert set(column) <= set(released)
    assert len({image.tobytes() for image in data["images"]}) == 4


def test_a_failed_h5_write_keeps_the_previous_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "3dshapes.h5"
    write_h5(str(path), {"labels": np.arange(3.0)})
    with pytest.raises(TypeError):  # h5py stores no Python objects
        write_h5(str(path), {"labels": np.arange(4.0), "bad": np.array([object()])})
    with h5py.File(path, "r") as f:
        assert list(f) == ["labels"] and f["labels"][:].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["3dshapes.h5"]


def test_sizes_beyond_the_released_grid_are_refused():
    assert parse_sizes("1,3,6,10,16,16", (1, 3, 6, 40, 32, 32)) == (1, 3, 6, 10, 16, 16)
    with pytest.raises(SystemExit, match="--sizes takes 6"):
        parse_sizes("1,3,7,10,16,16", (1, 3, 6, 40, 32, 32))


def test_the_released_csv_becomes_one_sequence_per_run_of_an_object(tmp_path):
    """Video 1: object 0 in frames 0-2, object 1 in frames 1-2 only after a gap; video 2: object 0 in one frame."""
    path = tmp_path / "downscale_keepaspect.csv"
    path.write_text('id,category,0,1,2,3\n'
                    '1,4,"[[10, 20, 30], None]","[[11, 21, 31], [5, 6, 7]]","[[12, 22, 32], [5, 7, 8]]",\n'
                    '2,1,"[[1, 2, 3]]",,,\n')
    data = sequences_from_csv(str(path))
    assert data["lengths"].tolist() == [3, 2]
    assert data["latents"].tolist() == [[20, 10, 30], [21, 11, 31], [22, 12, 32], [6, 5, 7], [7, 5, 8]]
