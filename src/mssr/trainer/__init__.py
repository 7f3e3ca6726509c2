"""Training: the RL trainer (:class:`~mssr.trainer.trainer.RLTrainer`, :func:`train`) and its config. The SFT
warm start the default job begins from is :mod:`mssr.sft`."""

from mssr.trainer.api import train
from mssr.trainer.config import TrainConfig

__all__ = ["TrainConfig", "train"]
