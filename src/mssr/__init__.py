"""mssr: stable single-rollout reinforcement learning for vision-language models.

Layers (each imports only the ones to its right):
``cli -> experiments -> trainer -> rollout -> models / data``; ``trainer -> rewards, algos``;
``evaluation -> rollout, rewards, data``. :mod:`mssr.algos` imports only torch.
"""

__version__ = "0.1.0"
