"""A run's log: ``train.log``, console lines that leave progress bars intact, and TensorBoard scalars."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from training.summaries import EpochStats

LOG_FILE = "train.log"
TENSORBOARD_DIR = "tensorboard"


class TqdmHandler(logging.Handler):
    """Console handler that writes through tqdm, so an open progress bar is redrawn below the line."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


class RunLog:
    """Plain-text log file, console lines and TensorBoard scalars; silent on ranks other than 0."""

    def __init__(self, output_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.logger = logging.getLogger(f"training.run.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.writer: SummaryWriter | None = None
        if not enabled:
            return
        formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(output_dir / LOG_FILE), TqdmHandler()):
            handler.setFormatter(formatter)
            self.logger.addHandler(handler)
        self.writer = SummaryWriter(str(output_dir / TENSORBOARD_DIR))

    def info(self, message: str) -> None:
        """Write one line to the log file and the console."""
        if self.enabled:
            self.logger.info(message)

    def epoch(self, stats: EpochStats) -> None:
        """Log an epoch summary line and its TensorBoard scalars."""
        self.info(
            f"epoch {stats.epoch + 1}: lr {stats.lr:.3e} loss {stats.loss:.4f} ce {stats.ce:.4f} "
            f"triplet {stats.triplet:.4f} acc {stats.accuracy:.4f} {stats.images_per_second:.1f} img/s"
        )
        if self.writer is not None:
            step = stats.epoch + 1
            for name in ("loss", "ce", "triplet", "lr"):
                self.writer.add_scalar(f"train/{name}", getattr(stats, name), step)
            self.writer.add_scalar("train/acc", stats.accuracy, step)
            self.writer.add_scalar("train/images_per_s", stats.images_per_second, step)
            self.writer.flush()

    def close(self) -> None:
        """Flush and release the file handler and the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)
