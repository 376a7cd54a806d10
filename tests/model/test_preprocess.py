"""Decoding and normalising crops: formats, sizes and the one error type for bad images."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from model import ImageDecodeError, load_image, preprocess
from model.preprocess import IMAGENET_MEAN, IMAGENET_STD


def encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def crop():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(100, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_lossless_formats_decode_to_the_same_pixels(crop, fmt):
    assert np.array_equal(load_image(encode(crop, fmt)), crop)


def test_jpeg_decodes_to_rgb_of_the_right_size(crop):
    image = load_image(encode(crop, "JPEG"))
    assert image.shape == (100, 40, 3) and image.dtype == np.uint8


def test_grayscale_and_rgba_become_rgb(crop):
    assert load_image(encode(crop[:, :, 0], "PNG")).shape == (100, 40, 3)
    rgba = np.concatenate([crop, np.full((100, 40, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(load_image(encode(rgba, "PNG")), crop)


def test_paths_and_arrays_are_accepted(crop, tmp_path):
    path = tmp_path / "crop.png"
    path.write_bytes(encode(crop, "PNG"))
    assert np.array_equal(load_image(path), crop)
    assert np.array_equal(load_image(str(path)), crop)
    assert np.array_equal(load_image(crop), crop)


def test_batch_is_resized_and_imagenet_normalised():
    white = np.full((300, 90, 3), 255, np.uint8)
    black = np.zeros((50, 20, 3), np.uint8)
    batch = preprocess([encode(white, "PNG"), black], (256, 128))
    assert batch.shape == (2, 3, 256, 128) and batch.dtype == torch.float32
    for channel in range(3):
        expected_white = (1 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        expected_black = -IMAGENET_MEAN[channel] / IMAGENET_STD[channel]
        assert np.allclose(batch[0, channel].numpy(), expected_white, atol=1e-5)
        assert np.allclose(batch[1, channel].numpy(), expected_black, atol=1e-5)


def test_resize_is_bilinear_like_the_paper_test_transform(crop):
    expected = np.asarray(Image.fromarray(crop).resize((128, 256), Image.Resampling.BILINEAR), np.float32)
    batch = preprocess([crop], (256, 128)).numpy()[0].transpose(1, 2, 0)
    restored = (batch * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)) * 255
    assert np.abs(restored - expected).max() < 1e-3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty image data"),
        (b"this is not an image at all", "cannot decode image"),
        (b"GIF89a" + b"\x00" * 40, "cannot decode|unsupported image format"),
    ],
)
def test_bad_bytes_raise_the_documented_error(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        load_image(data)


def test_truncated_png_is_refused(crop):
    data = encode(crop, "PNG")
    with pytest.raises(ImageDecodeError, match="cannot decode image"):
        load_image(data[: len(data) // 2])


def test_gif_is_an_unsupported_format(crop):
    with pytest.raises(ImageDecodeError, match="unsupported image format 'GIF'"):
        load_image(encode(crop, "GIF"))


def test_huge_png_header_is_refused_before_decoding():
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    with pytest.raises(ImageDecodeError, match="too large|exceeds the limit"):
        load_image(png)


@pytest.mark.parametrize("array", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 2), np.uint8)])
def test_arrays_of_the_wrong_kind_are_refused(array):
    with pytest.raises(ImageDecodeError, match="expected"):
        load_image(array)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ImageDecodeError, match="cannot read image file"):
        load_image(tmp_path / "nope.jpg")


def test_empty_batch_is_refused():
    with pytest.raises(ImageDecodeError, match="no images"):
        preprocess([])


OPENCV_DECODE = """
import sys
{setup}
import cv2
import numpy as np
data = np.fromfile(sys.argv[1], dtype=np.uint8)
try:
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
except cv2.error as exc:
    decoded = None if "CV_IO_MAX_IMAGE_PIXELS" in str(exc) else exc
print("refused" if decoded is None else "x".join(map(str, decoded.shape)))
"""


@pytest.mark.parametrize(("setup", "expected"), [("import model", "refused"), ("", "4000x5000x3")])
def test_opencv_refuses_images_over_the_pixel_limit_once_model_is_imported(tmp_path, setup, expected):
    import os
    import subprocess
    import sys

    import cv2

    path = tmp_path / "twenty-megapixels.png"
    ok, encoded = cv2.imencode(".png", np.zeros((4000, 5000, 3), np.uint8))
    assert ok
    encoded.tofile(path)
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    script = OPENCV_DECODE.format(setup=setup)
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
