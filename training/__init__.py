"""Training toolkit; importing it first sets the decoders' pixel limits (before OpenCV loads)."""

import model.image_limits  # noqa: F401
