"""Decoder pixel limits for the whole process, set before OpenCV is loaded.

Pillow refuses images over ``MAX_IMAGE_PIXELS`` (``model.preprocess`` also turns its bomb warning into an
error); OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when ``cv2`` is first imported, so this module
must be imported before ``cv2`` (``model/__init__`` and the training code that draws with OpenCV do).
"""

from __future__ import annotations

import os

from PIL import Image

MAX_IMAGE_PIXELS = 16_000_000

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
