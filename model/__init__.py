"""The RGA re-id network: build, load, preprocess, export and embed."""

import model.image_limits  # noqa: F401  (first: sets the decoders' pixel limits before cv2 loads)
from model.build import build_model
from model.config import ModelConfig
from model.embedder import Embedder, load_embedder
from model.export import export_model
from model.export_format import ExportError
from model.network import EmbeddingNet, ReIDNet
from model.preprocess import ImageDecodeError, load_image, preprocess
from model.rga import RGAModule
from model.weights import WeightsError, checkpoint_payload, load_checkpoint, load_imagenet_backbone

__all__ = [
    "Embedder",
    "EmbeddingNet",
    "ExportError",
    "ImageDecodeError",
    "ModelConfig",
    "RGAModule",
    "ReIDNet",
    "WeightsError",
    "build_model",
    "checkpoint_payload",
    "export_model",
    "load_checkpoint",
    "load_embedder",
    "load_image",
    "load_imagenet_backbone",
    "preprocess",
]
