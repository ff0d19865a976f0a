"""Image files are decoded as a browser shows them: 16-bit, float, EXIF orientation.

Each file is embedded by path and compared with the same picture given as a uint8 array
computed here independently (numpy rounding, ``np.rot90``), on the tiny random model.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from _clip_fixtures import random_image
from PIL import Image

from skgradnorm._clip._images import _to_rgb
from skgradnorm.exceptions import UnreadableImageError

ATOL = 1e-6


def _gradient16(h=40, w=48):
    return np.linspace(0, 65535, h * w).reshape(h, w).round().astype(np.uint16)


def test_16_bit_png_is_scaled_not_clipped(tiny_encoder, tmp_path):
    g16 = _gradient16()
    path = tmp_path / "g16.png"
    Image.fromarray(g16).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # Pillow keeps the 16 bits
        rgb = np.asarray(_to_rgb(im))
    expected8 = np.rint(g16 / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(rgb[:, :, 0], expected8)
    assert (rgb == 255).mean() < 0.01  # Pillow's own convert makes ~99.6% of it white
    by_path, by_array = tiny_encoder.transform([path, expected8])
    np.testing.assert_allclose(by_path, by_array, atol=ATOL)


def test_mode_i_images_are_16_bit_scaled():
    g16 = _gradient16().astype(np.int32)
    rgb = np.asarray(_to_rgb(Image.fromarray(g16, mode="I")))
    np.testing.assert_array_equal(rgb[:, :, 1], np.rint(g16 / 257.0).astype(np.uint8))


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-3.0, 250.0)])
def test_float_tiff_is_scaled_from_its_range(tiny_encoder, tmp_path, low, high):
    rng = np.random.default_rng(0)
    values = rng.uniform(low, high, size=(40, 48)).astype(np.float32)
    values[0, 0], values[-1, -1] = low, high  # the range is exactly [low, high]
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path)
    expected8 = np.rint((values.astype(np.float64) - low) / (high - low) * 255).astype(np.uint8)
    with Image.open(path) as im:
        assert im.mode == "F"
        np.testing.assert_array_equal(np.asarray(_to_rgb(im))[:, :, 2], expected8)
    assert expected8.mean() > 50  # not black
    by_path, by_array = tiny_encoder.transform([path, expected8])
    np.testing.assert_allclose(by_path, by_array, atol=ATOL)


def test_float_image_with_nan_and_constant_values_does_not_fail():
    values = np.full((8, 8), 7.0, dtype=np.float32)
    values[0, 0] = np.nan
    rgb = np.asarray(_to_rgb(Image.fromarray(values, mode="F")))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize("orientation, turns", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied_before_embedding(tiny_encoder, tmp_path, orientation, turns):
    pixels = random_image(3, size=(24, 40))  # not square: a wrong rotation changes the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rotated{orientation}.png"
    Image.fromarray(pixels).save(path, exif=exif)
    upright = np.ascontiguousarray(np.rot90(pixels, k=turns))  # counter-clockwise turns
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(_to_rgb(im)), upright)
    by_path, by_array, unturned = tiny_encoder.transform([path, upright, pixels])
    np.testing.assert_allclose(by_path, by_array, atol=ATOL)
    assert not np.allclose(by_path, unturned, atol=1e-3)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5), (5, 0, 3), (4, 4, 0)])
def test_empty_image_arrays_are_rejected_with_their_shape(tiny_encoder, shape):
    empty = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"empty \(shape \(" + ", ".join(map(str, shape))):
        tiny_encoder.transform(empty)
    with pytest.raises(ValueError, match="empty"):
        tiny_encoder.transform([random_image(0), empty])


def test_empty_pil_image_is_rejected(tiny_encoder):
    with pytest.raises(ValueError, match="empty"):
        tiny_encoder.transform([Image.new("RGB", (0, 3))])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_is_reported_not_waited_on(tiny_encoder, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(random_image(0)).save(good)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = {}

    def work():
        try:
            tiny_encoder.transform([good, fifo])
        except UnreadableImageError as exc:
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # unblock the reader
        pytest.fail("reading a FIFO as an image blocked")
    assert [name for name, _ in result["error"].failures] == [str(fifo)]
    assert "not a regular file" in result["error"].failures[0][1]
