"""datasets/threedident_dataset.py: file names, folder checks, the pair stream (latents and images of
the renders found, z̃ near z, never z's own render, deterministic per seed) and the in-order test set."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from datasets.threedident_dataset import (IMAGE_MEAN, IMAGE_STD, DatasetFormatError, SequentialThreeDIdentDataset,
                                          ThreeDIdentDataset, image_name, load_image, load_raw_latents,
                                          name_digits, normalise_images, pair_loader)
from datasets.threedident_latents import build_latent_space, select_columns
from distributed_utils import shard

N = 400


def write_folder(root, n=N, width=10, n_images=None, digits=None):
    """raw_latents.npy plus 8×8 PNGs whose red/green values spell the render index (names zero-padded to
    `digits`, default image_name's)."""
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "raw_latents.npy", np.random.default_rng(0).uniform(-1, 1, (n, width)).astype(np.float32))
    (root / "images").mkdir()
    for i in range(n if n_images is None else n_images):
        pixels = np.zeros((8, 8, 3), np.uint8)
        pixels[..., 0], pixels[..., 1] = i % 256, i // 256
        Image.fromarray(pixels).save(root / "images" / image_name(i, n, digits))
    return root


def decode_index(images: torch.Tensor) -> np.ndarray:
    """Render index spelled by uint8 images (B, 3, H, W)."""
    assert images.dtype == torch.uint8
    values = images[:, :, 0, 0].long()
    return (values[:, 0] + 256 * values[:, 1]).numpy()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("3dident"))


def pairs(folder, **kwargs):
    layout = select_columns(True)
    space = build_latent_space(layout, "l2", sigma=0.1)
    return ThreeDIdentDataset(folder, space, 64, layout.columns, layout.file_width, **kwargs)


@pytest.mark.parametrize("n, index, name", [(250000, 7, "000007.png"), (25000, 24999, "24999.png"),
                                            (10, 9, "9.png"), (11, 10, "10.png"), (2, 1, "1.png")])
def test_image_names_are_zero_padded_to_ceil_log10(n, index, name):
    assert image_name(index, n) == name


def test_pair_batches_hold_the_renders_found(folder):
    torch.manual_seed(0)
    z, z_tilde, x, x_tilde = next(iter(pairs(folder)))
    latents = np.load(folder / "raw_latents.npy")
    assert z.shape == z_tilde.shape == (64, 10) and x.shape == x_tilde.shape == (64, 3, 8, 8)
    idx, idx_tilde = decode_index(x), decode_index(x_tilde)
    assert np.allclose(latents[idx], z.numpy()) and np.allclose(latents[idx_tilde], z_tilde.numpy())
    assert (idx != idx_tilde).all()


def test_uint8_images_normalise_as_the_float_formula_did(tmp_path):
    """Workers send uint8 (3, H, W); normalise_images on the device gives what the loader gave before:
    (PNG/255 − mean)/std as float32, per channel; a channels_last batch stays channels_last."""
    pixels = np.random.default_rng(0).integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for path, image in zip(paths, pixels):
        Image.fromarray(image).save(path)
    batch = torch.stack([load_image(path) for path in paths])
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 6, 5)
    before = [(torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255.0)
               .permute(2, 0, 1) - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]
              for path in paths]
    normalised = normalise_images(batch, IMAGE_MEAN, IMAGE_STD)
    assert normalised.dtype == torch.float32
    torch.testing.assert_close(normalised, torch.stack(before), rtol=0, atol=1e-6)
    channels_last = normalise_images(batch.to(memory_format=torch.channels_last), IMAGE_MEAN, IMAGE_STD)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, normalised, rtol=0, atol=0)


def test_the_sequential_loader_sends_uint8_images(folder):
    data = SequentialThreeDIdentDataset(folder, select_columns(True).columns, 10)
    assert next(iter(DataLoader(data, batch_size=4, num_workers=1)))[1].dtype == torch.uint8


def test_positives_are_closer_than_random_pairs(folder):
    torch.manual_seed(0)
    stream = iter(pairs(folder, load_images=False))
    z, z_tilde, x, _ = next(stream)
    assert x.numel() == 0
    positive = (z - z_tilde).norm(dim=1).mean()
    negative = (z - z.roll(1, 0)).norm(dim=1).mean()
    assert positive < 0.8 * negative


@pytest.mark.slow
def test_stream_depends_on_its_seed_and_position_only(folder):
    """Batches start… of the stream seeded with `seed`, whatever the workers (spawned; they send uint8 images),
    the global RNG, the rank whose rows they load and where the images come from (the workers read the image
    cache, the main process the PNGs)."""
    def batches(seed, workers, start=0, n=4, rows=slice(None), cache=False):
        data = pairs(folder, cache=cache)
        data.seed, data.start, data.rows = seed, start, rows
        torch.manual_seed(seed + 100 * workers)
        loader = iter(pair_loader(data, workers=workers))
        return [next(loader) for _ in range(n)]

    whole, rank1 = batches(0, 0, n=6), shard(64, 1, 2)
    parts = batches(0, 2, start=2, rows=rank1, cache=True)  # two workers from position 2 on, rank 1 of 2's rows
    assert parts[0][2].dtype == parts[0][3].dtype == torch.uint8 and parts[0][2].shape == (32, 3, 8, 8)
    for part, batch in zip(parts, whole[2:], strict=True):
        assert all(torch.equal(p, b[rank1]) for p, b in zip(part, batch, strict=True))
    assert not torch.equal(whole[0][0], batches(1, 0, n=1)[0][0])


def test_ranks_share_one_global_stream(folder):
    """Under torchrun each rank yields its rows of the same global batches: concatenated, 1 or 4 ranks alike."""
    def rank_batches(rank, world, n=2):
        data = pairs(folder)
        data.rows = shard(64, rank, world)
        stream = iter(data)
        return [next(stream) for _ in range(n)]

    whole = rank_batches(0, 1)
    parts = [rank_batches(rank, 4) for rank in range(4)]
    assert all(len(part[0][0]) == 16 for part in parts)
    for step, batch in enumerate(whole):
        for item, value in enumerate(batch):
            assert torch.equal(value, torch.cat([part[step][item] for part in parts]))


def test_sequential_dataset_is_every_render_in_order(folder):
    data = SequentialThreeDIdentDataset(folder, select_columns(True).columns, 10)
    z, x = next(iter(DataLoader(data, batch_size=N)))
    assert len(data) == N and (decode_index(x) == np.arange(N)).all()
    assert np.allclose(z.numpy(), np.load(folder / "raw_latents.npy"))


def test_column_selection(folder):
    layout = select_columns(True, color_only=True)
    data = SequentialThreeDIdentDataset(folder, layout.columns, 10, load_images=False)
    assert np.allclose(data[5][0].numpy(), np.load(folder / "raw_latents.npy")[5, 7:])


@pytest.mark.parametrize("present, n, digits", [({"000000.png", "000001.png"}, 250000, 6),
                                                ({"00000.png", "00001.png"}, 250000, 5), ({"00000.png"}, 25000, 5),
                                                ({"0000.png"}, 25000, 4), ({"1.png"}, 25000, None)])
def test_the_name_width_is_read_off_render_zero(present, n, digits):
    assert name_digits(present, n) == digits


def test_a_folder_with_wider_names_is_read_in_order(tmp_path):
    """The released train folder's width is unverified (6 digits by cl-ica's rule, 5 in AdaSSL's docs)."""
    wide = write_folder(tmp_path / "wide", n=20, digits=3)
    assert (wide / "images" / "019.png").is_file()
    data = SequentialThreeDIdentDataset(wide, None, 10)
    assert decode_index(torch.stack([data[i][1] for i in range(20)])).tolist() == list(range(20))


def test_bad_folders_are_reported(tmp_path, folder):
    with pytest.raises(DatasetFormatError, match="dataset folder not found"):
        load_raw_latents(tmp_path / "missing")
    with pytest.raises(DatasetFormatError, match="raw_latents.npy is missing"):
        load_raw_latents(tmp_path)
    with pytest.raises(DatasetFormatError, match="has 10 latent columns but the chosen flags need 11"):
        load_raw_latents(folder, expected_width=11)
    short = write_folder(tmp_path / "short", n=20, n_images=15)
    with pytest.raises(DatasetFormatError, match=r"lacks 5 of the 20 images .* \(first missing: 15.png\)"):
        SequentialThreeDIdentDataset(short, None, 10)
    (tmp_path / "noimages").mkdir()
    np.save(tmp_path / "noimages" / "raw_latents.npy", np.zeros((5, 10), np.float32))
    with pytest.raises(DatasetFormatError, match="image folder not found"):
        SequentialThreeDIdentDataset(tmp_path / "noimages", None, 10)
    assert len(SequentialThreeDIdentDataset(tmp_path / "noimages", None, 10, load_images=False)) == 5
