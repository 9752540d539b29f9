"""datasets/slowvae_files.py: each reader on a tiny file in its released format (grid, shapes, the image of a known
cell) and one-line errors naming the file for missing, truncated and wrongly shaped files."""
import os

import numpy as np
import pytest

from datasets.factor_pairs import DataFormatError
from datasets.slowvae_files import (DSPRITES_FILE, NORB_FILES, SHAPES3D_FILE, read_cars3d, read_dsprites,
                                    read_mpi3d, read_shapes3d, read_smallnorb)
from tests.slowvae_fixtures import write_cars3d, write_mpi3d, write_smallnorb
from tools.slowvae_data.dsprites import make_dsprites, render
from tools.slowvae_data.shapes3d import make_shapes3d, write_h5

MPI3D_TINY = (2, 2, 1, 1, 1, 2, 3)


def test_dsprites_grid_drops_color_and_keeps_the_c_order(tmp_path):
    data = make_dsprites((1, 3, 2, 2, 3, 2))
    np.savez(tmp_path / DSPRITES_FILE, **data)
    grid = read_dsprites(str(tmp_path))
    assert grid.sizes == (3, 2, 2, 3, 2) and grid.images.shape == (72, 64, 64) and grid.scale == 1.0
    cell = np.ravel_multi_index((2, 1, 0, 2, 1), grid.sizes)  # heart, scale 1, orientation 0, posX 1, posY 1
    np.testing.assert_array_equal(grid.images[cell], render(3, 1.0, 0.0, 1.0, 1.0))
    assert grid.categorical[0] and grid.evaluated == (0, 1, 2, 3, 4)


def test_shapes3d_grid_from_the_label_values(tmp_path):
    data = make_shapes3d((2, 2, 1, 2, 3, 2))
    write_h5(str(tmp_path / SHAPES3D_FILE), data)
    grid = read_shapes3d(str(tmp_path))
    assert grid.sizes == (2, 2, 1, 2, 3, 2) and grid.images.shape == (48, 64, 64, 3)
    cell = np.ravel_multi_index((1, 0, 0, 1, 2, 0), grid.sizes)
    np.testing.assert_array_equal(grid.images[cell], data["images"][cell])
    np.testing.assert_array_equal(data["labels"][cell], [0.9, 0.0, 0.0, 1.25, 3.0, -30.0])


def test_mpi3d_image_i_is_cell_i(tmp_path):
    write_mpi3d(str(tmp_path), MPI3D_TINY)
    grid = read_mpi3d(str(tmp_path), sizes=MPI3D_TINY)
    assert grid.images.shape == (24, 64, 64, 3) and grid.categorical[1]
    assert grid.images[17, 5, 5, 0] == 17


def test_mpi3d_variants_are_their_own_files(tmp_path):
    write_mpi3d(str(tmp_path), MPI3D_TINY, "toy")
    assert read_mpi3d(str(tmp_path), MPI3D_TINY, variant="toy").images.shape == (24, 64, 64, 3)
    with pytest.raises(DataFormatError, match=r"mpi3d_real.npz; get it with 'python tools/download.py mpi3d_real"):
        read_mpi3d(str(tmp_path), MPI3D_TINY)


def test_cars3d_views_resized_and_ordered_elevation_azimuth_object(tmp_path):
    write_cars3d(str(tmp_path), n_cars=3, n_azimuths=4, n_elevations=2, size=128)
    grid = read_cars3d(str(tmp_path))
    assert grid.sizes == (2, 4, 3) and grid.images.shape == (24, 64, 64, 3)
    np.testing.assert_array_equal(grid.images[:, 10, 10, 0], np.arange(24))


def test_smallnorb_sorts_train_and_test_into_the_grid_and_ignores_the_instance(tmp_path):
    write_smallnorb(str(tmp_path), (2, 2, 2, 3, 2))
    grid = read_smallnorb(str(tmp_path))
    assert grid.sizes == (2, 2, 2, 3, 2) and grid.images.shape == (48, 64, 64)
    np.testing.assert_array_equal(grid.images[:, 0, 0], np.arange(48))  # left camera, cell order
    assert grid.evaluated == (0, 2, 3, 4)


def truncate(path, keep: float = 0.5) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[:int(len(data) * keep)])


def write_dsprites(data_dir):
    np.savez(data_dir / DSPRITES_FILE, **make_dsprites((1, 1, 1, 1, 2, 2)))
    return data_dir / DSPRITES_FILE


def write_shapes3d(data_dir):
    write_h5(str(data_dir / SHAPES3D_FILE), make_shapes3d((1, 1, 1, 1, 2, 2)))
    return data_dir / SHAPES3D_FILE


def write_norb(data_dir):
    write_smallnorb(str(data_dir))
    return data_dir / f"{NORB_FILES[1]}-dat.mat"


@pytest.mark.parametrize("write, read", [
    (write_dsprites, read_dsprites), (write_shapes3d, read_shapes3d),
    (lambda d: write_mpi3d(str(d), MPI3D_TINY), lambda d: read_mpi3d(d, MPI3D_TINY)),
    (lambda d: write_cars3d(str(d), 2, 2, 2)[1], read_cars3d), (write_norb, read_smallnorb)],
    ids=["dsprites", "shapes3d", "mpi3d", "cars3d", "smallnorb"])
def test_missing_and_truncated_files_are_one_line_errors_naming_the_file(tmp_path, write, read):
    with pytest.raises(DataFormatError, match="not found") as e:
        read(str(tmp_path))
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    path = write(tmp_path)
    truncate(path)
    with pytest.raises(DataFormatError) as e:
        read(str(tmp_path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_wrong_shapes_and_incomplete_grids_name_the_file(tmp_path):
    np.savez(tmp_path / DSPRITES_FILE, imgs=np.zeros((4, 32, 32), np.uint8), latents_classes=np.zeros((4, 6)))
    with pytest.raises(DataFormatError, match=r"imgs has shape \(4, 32, 32\), expected \(N, 64, 64\)"):
        read_dsprites(str(tmp_path))
    data = make_dsprites((1, 1, 1, 1, 2, 2))
    np.savez(tmp_path / DSPRITES_FILE, **{**data, "latents_classes": data["latents_classes"][::-1]})
    with pytest.raises(DataFormatError, match="not in C order"):
        read_dsprites(str(tmp_path))
    write_mpi3d(str(tmp_path), MPI3D_TINY)
    with pytest.raises(DataFormatError, match=os.path.join(str(tmp_path), "mpi3d_real.npz")):
        read_mpi3d(str(tmp_path))  # 24 images, not the 1 036 800 of the released grid
