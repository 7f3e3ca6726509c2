"""Training: the RL trainer (:class:`~mssr.trainer.trainer.RLTrainer`, :func:`train`), its config, and the SFT
warm start (:mod:`mssr.trainer.sft`)."""

from mssr.trainer.api import train
from mssr.trainer.config import TrainConfig

__all__ = ["TrainConfig", "train"]
