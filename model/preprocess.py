"""Decode person crops and turn them into the network's normalised input.

One code path for evaluation, export checks and the service: PIL decoding, bilinear resize
to the model's input size (as the paper's test transform), ImageNet mean/std. The decoders' pixel
limits (``MAX_IMAGE_PIXELS``) come from ``model.image_limits``; callers that take images from strangers
(the service) add ``DecodeLimits`` (longest side, aspect ratio), check them from the header with
``read_header`` and decode with ``decode_resized``, which never makes a full-size array and decodes
large JPEGs at reduced scale.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from model.defaults import INPUT_SIZE
from model.image_limits import MAX_IMAGE_PIXELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "BMP"})

ImageSource = bytes | bytearray | memoryview | np.ndarray | str | Path


class ImageDecodeError(ValueError):
    """Raised for an empty, corrupt, oversized or unsupported image."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds an image must meet, read from its header before any pixel is decoded.

    ``max_side``: the longest side in pixels; ``max_aspect``: the longest side over the shortest;
    ``max_pixels``: width times height. 0 turns ``max_side`` or ``max_aspect`` off; the pixel limit
    never goes above the process-wide one of ``model.image_limits``.
    """

    max_side: int = 0
    max_aspect: float = 0.0
    max_pixels: int = MAX_IMAGE_PIXELS


NO_EXTRA_LIMITS = DecodeLimits()


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: its format and size, and the size it will be decoded at.

    ``decoded_size`` is smaller than ``size`` for a JPEG decoded at reduced scale (draft mode);
    ``decode_bytes`` bounds the memory the decode takes (the decoded image and its RGB copy).
    """

    format: str
    mode: str
    size: tuple[int, int]
    decoded_size: tuple[int, int]

    @property
    def decode_bytes(self) -> int:
        """An upper bound of the bytes decoding takes: Pillow keeps 1 to 4 bytes a pixel, RGB as 4."""
        width, height = self.decoded_size
        stored = 1 if self.mode in ("1", "L", "P") else 2 if self.mode.startswith("I;16") else 4
        converted = 0 if self.mode == "RGB" else 4
        return width * height * (stored + converted)


def _draft_scale(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """The JPEG reduction (1, 2, 4 or 8) that keeps the image at least ``target`` (width, height)."""
    if target is None:
        return 1
    scale = min(size[0] // max(target[0], 1), size[1] // max(target[1], 1))
    return next(factor for factor in (8, 4, 2, 1) if scale >= factor)


def _check_header(img: Image.Image, name: str, limits: DecodeLimits) -> None:
    if img.format not in SUPPORTED_FORMATS:
        raise ImageDecodeError(f"{name}: unsupported image format {img.format!r}; expected JPEG, PNG or BMP")
    width, height = img.size
    if min(width, height) < 1:
        raise ImageDecodeError(f"{name}: image of {width}x{height} pixels has no pixels")
    max_pixels = min(limits.max_pixels, MAX_IMAGE_PIXELS)
    if width * height > max_pixels:
        raise ImageDecodeError(f"{name}: image of {width}x{height} pixels exceeds the limit of {max_pixels}")
    if limits.max_side and max(width, height) > limits.max_side:
        raise ImageDecodeError(
            f"{name}: image of {width}x{height} pixels has a side over the limit of {limits.max_side}"
        )
    if limits.max_aspect and max(width, height) > limits.max_aspect * min(width, height):
        raise ImageDecodeError(
            f"{name}: image of {width}x{height} pixels is more elongated than the limit of "
            f"{limits.max_aspect:g}:1"
        )


@contextmanager
def _opened(data: bytes, name: str, limits: DecodeLimits) -> Iterator[Image.Image]:
    """The image opened (header only) and checked against ``limits``; errors become ImageDecodeError."""
    if len(data) == 0:
        raise ImageDecodeError(f"{name}: empty image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                _check_header(img, name, limits)
                yield img
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{name}: cannot decode image (not a JPEG, PNG or BMP file)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"{name}: image too large to decode safely ({exc})") from exc
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise ImageDecodeError(f"{name}: cannot decode image ({exc})") from exc


def _decode_bytes(data: bytes, name: str) -> np.ndarray:
    with _opened(data, name, NO_EXTRA_LIMITS) as img:
        img.load()
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_header(
    data: bytes,
    name: str = "image",
    limits: DecodeLimits = NO_EXTRA_LIMITS,
    input_size: tuple[int, int] | None = None,
) -> ImageHeader:
    """Check an image's header against ``limits`` without decoding it; ImageDecodeError if it fails.

    With ``input_size`` (height, width), the decoded size is the one ``decode_resized`` will decode at.
    """
    target = None if input_size is None else (input_size[1], input_size[0])
    with _opened(data, name, limits) as img:
        scale = _draft_scale(img.size, target) if img.format == "JPEG" else 1
        decoded = (-(-img.size[0] // scale), -(-img.size[1] // scale))
        return ImageHeader(img.format, img.mode, img.size, decoded)


def decode_resized(
    data: bytes, input_size: tuple[int, int], name: str = "image", limits: DecodeLimits = NO_EXTRA_LIMITS
) -> np.ndarray:
    """Decode image bytes straight to the model's (height, width) as an RGB uint8 array.

    The same pixels as ``resize_rgb(load_image(data), input_size)``, with less memory: no full-size
    array is made, and a JPEG at least twice the input size in both directions is decoded at a reduced
    scale (libjpeg's DCT scaling, 1/2 to 1/8) that still leaves it at least the input size.
    """
    height, width = input_size
    with _opened(data, name, limits) as img:
        if img.format == "JPEG" and _draft_scale(img.size, (width, height)) > 1:
            img.draft("RGB", (width, height))
        img.load()
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def _check_array(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise ImageDecodeError(f"{name}: expected a uint8 array, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) == 0:
        raise ImageDecodeError(f"{name}: expected an HxWx3 RGB array, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def load_image(source: ImageSource, name: str | None = None) -> np.ndarray:
    """Return an image as an HxWx3 uint8 RGB array from bytes, a file path or an array."""
    if isinstance(source, np.ndarray):
        return _check_array(source, name or "array")
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"{path}: cannot read image file ({exc.strerror})") from exc
        return _decode_bytes(data, name or str(path))
    if isinstance(source, bytes | bytearray | memoryview):
        return _decode_bytes(bytes(source), name or "image")
    raise ImageDecodeError(f"{name or 'image'}: unsupported input type {type(source).__name__}")


def resize_rgb(image: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 image to (height, width) with PIL's bilinear filter."""
    height, width = input_size
    if image.shape[0] == height and image.shape[1] == width:
        return image
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def normalize_batch(batch: np.ndarray) -> torch.Tensor:
    """Turn an (N, H, W, 3) uint8 batch into a float32 (N, 3, H, W) ImageNet-normalised tensor."""
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return tensor.sub_(mean).div_(std).contiguous()


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """Turn one HxWx3 uint8 RGB image (copied: any strides) into a float32 (3, H, W) normalised tensor."""
    return normalize_batch(np.array(image, dtype=np.uint8)[None])[0]


def preprocess(sources: Sequence[ImageSource], input_size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """Decode, resize and normalise a batch of images into the model's input tensor."""
    if len(sources) == 0:
        raise ImageDecodeError("no images given")
    images = [resize_rgb(load_image(src), input_size) for src in sources]
    return normalize_batch(np.stack(images))
