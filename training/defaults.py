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

# ---- unsupervised adaptation (reid-train adapt): Cluster Contrast (Dai et al., ACCV 2022) on DBSCAN
# pseudo-labels of k-reciprocal Jaccard distances, with CAP's camera-aware proxies (Wang et al., AAAI 2021)
# Label of an adaptation run in logs and provenance.
ADAPT_RUN_NAME = "adapt"
# k-reciprocal neighbours (k1) and query-expansion neighbours (k2) of the Jaccard distance.
ADAPT_K1 = 30
ADAPT_K2 = 6
# DBSCAN: neighbourhood radius on the Jaccard distance, and points a core needs (itself included).
ADAPT_EPS = 0.6
ADAPT_MIN_SAMPLES = 4
# Cluster features with each camera's mean taken out (when cameras are known): colour casts and
# backgrounds that a camera puts on everyone stop pulling its crops together.
ADAPT_CAMERA_CENTRE = False
# Images per feature-extraction batch before each clustering.
ADAPT_FEATURE_BATCH_SIZE = 128
# Contrastive memory: softmax temperature, and the share of the old entry kept at each update.
ADAPT_TEMPERATURE = 0.05
ADAPT_MOMENTUM = 0.1
# How a cluster's memory entry is updated: from the batch's hardest instance of it, or its batch mean.
ADAPT_MEMORY_UPDATE = "hard"
# Camera-aware proxies: "auto" uses them when every image's name gives its camera.
ADAPT_CAMERA = "auto"
# Weight of the camera-aware proxy loss, its temperature, and hard negative proxies per sample.
ADAPT_CAMERA_WEIGHT = 0.5
ADAPT_CAMERA_TEMPERATURE = 0.07
ADAPT_HARD_NEGATIVES = 50
# PK batches over pseudo-identities: P x K images.
ADAPT_BATCH_SIZE = 256
ADAPT_NUM_INSTANCES = 16
# Adam: learning rate (constant, no warm-up), decay, x gamma at the milestones (epochs).
ADAPT_LR = 3.5e-4
ADAPT_WEIGHT_DECAY = 5e-4
ADAPT_MILESTONES: tuple[int, ...] = (20, 40)
ADAPT_GAMMA = 0.1
# Epochs (one clustering each) and training iterations per epoch.
ADAPT_EPOCHS = 50
ADAPT_ITERS = 200
# Resumable checkpoint every this many epochs, and how many of them are kept (0: all).
ADAPT_CHECKPOINT_EVERY = 1
ADAPT_KEEP_CHECKPOINTS = 2
