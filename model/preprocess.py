"""Decode person crops and turn them into the network's normalised input.

One code path for evaluation, export checks and the service: PIL decoding, bilinear resize
to the model's input size (as the paper's test transform), ImageNet mean/std. The decoders' pixel
limits (``MAX_IMAGE_PIXELS``) come from ``model.image_limits``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
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


def _decode_bytes(data: bytes, name: str) -> np.ndarray:
    if len(data) == 0:
        raise ImageDecodeError(f"{name}: empty image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in SUPPORTED_FORMATS:
                    raise ImageDecodeError(
                        f"{name}: unsupported image format {img.format!r}; expected JPEG, PNG or BMP"
                    )
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageDecodeError(
                        f"{name}: image of {width}x{height} pixels exceeds the limit of {MAX_IMAGE_PIXELS}"
                    )
                img.load()
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{name}: cannot decode image (not a JPEG, PNG or BMP file)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"{name}: image too large to decode safely ({exc})") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{name}: cannot decode image ({exc})") from exc


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
