"""Every default of the training toolkit, defined once; the recipe's are the paper's RGA-SC on CUHK03.

``training.config``, the CLI and the functions taking these settings read them from here;
the architecture's defaults are in ``model.defaults``.
"""

from __future__ import annotations

# ---- run
# Label of the run in logs and provenance.
RUN_NAME = "rgasc"

# ---- data
# Dataset name for ``training.datasets.build_dataset``.
DATASET = "cuhk03-labeled"
# DataLoader worker processes.
NUM_WORKERS = 4

# ---- model
# torchvision ImageNet ResNet-50 state dict for the trunk, relative to the working directory.
PRETRAINED = "weights/pre_train/resnet50-19c8e357.pth"

# ---- PK sampler
# Images per batch, summed over all ranks: P identities x K images.
BATCH_SIZE = 64
# K: images per identity in a batch.
NUM_INSTANCES = 4

# ---- augmentation
# Probability of Random2DTranslation (enlarge, then crop at random); otherwise a plain resize.
TRANSLATE_PROB = 0.5
# Enlargement factor of Random2DTranslation.
TRANSLATE_SCALE = 1.125
# Probability of a horizontal flip.
FLIP_PROB = 0.5
# Probability of random erasing (on the normalised tensor).
ERASE_PROB = 0.5
# Range of the erased area, as a fraction of the image.
ERASE_AREA: tuple[float, float] = (0.02, 0.4)
# Smallest aspect ratio of the erased rectangle (the largest is its inverse).
ERASE_MIN_ASPECT = 0.3
# Tries at drawing a rectangle that fits before giving up.
ERASE_ATTEMPTS = 100
# Value written into the erased rectangle.
ERASE_FILL = 0.0

# ---- loss
# Label smoothing epsilon of the cross entropy on the BN-neck logits.
LABEL_SMOOTHING = 0.1
# Margin of the batch-hard triplet loss on the pooled feature.
TRIPLET_MARGIN = 0.3
# Weight of the cross entropy in the total loss.
CE_WEIGHT = 1.0
# Weight of the triplet loss in the total loss.
TRIPLET_WEIGHT = 1.0

# ---- optimiser (Adam, coupled L2 weight decay)
# Base learning rate, reached at the end of the warm-up.
LR = 8e-4
# L2 weight decay.
WEIGHT_DECAY = 5e-4
# Adam betas.
BETAS: tuple[float, float] = (0.9, 0.999)
# Adam epsilon.
EPS = 1e-8

# ---- learning-rate schedule (set once per epoch)
# Epochs of linear warm-up.
WARMUP_EPOCHS = 20
# Learning rate of the first warm-up epoch.
WARMUP_START_LR = 8e-6
# Epochs at which the learning rate is multiplied by GAMMA.
MILESTONES: tuple[int, ...] = tuple(range(80, 361, 40))
# Step decay factor.
GAMMA = 0.5

# ---- training loop
# Epochs to train.
EPOCHS = 600
# Seed of python, numpy, torch and the sampler.
SEED = 16
# Mixed precision (used on CUDA only).
AMP = True
# Deterministic kernels where PyTorch allows.
DETERMINISTIC = True
# Save a resumable checkpoint every this many epochs.
CHECKPOINT_EVERY = 40
# Periodic checkpoints kept (0 keeps all).
KEEP_CHECKPOINTS = 0
# Evaluate on the test split after the last epoch.
EVALUATE_AT_END = True

# ---- evaluation
# Images per feature-extraction batch in the evaluation at the end of training.
EVAL_BATCH_SIZE = 128
# Images per feature-extraction batch when evaluating outside a recipe (reid-train evaluate).
FEATURE_BATCH_SIZE = 64
# k-reciprocal re-ranking of the distances.
RERANK = False
# Average each image's features with its mirror's.
FLIP = False
# Distance between features: cosine or euclidean.
METRIC = "cosine"
# Queries drawn with their ranked gallery in rank_lists.png.
NUM_RANK_LISTS = 8

# ---- synthetic people (reid-train make-synthetic)
# (height, width) of a synthetic person image.
SYNTHETIC_IMAGE_SIZE: tuple[int, int] = (128, 64)
# Images of each identity per camera.
SYNTHETIC_IMAGES_PER_CAMERA = 4
