"""Suite-wide settings: one intra-op thread per test process.

The models in tests are tiny, so threads buy nothing, and on a shared 2-core machine oversubscribed OpenMP
threads were measured to slow a training step 40× (2 threads under load 6: 63 s/step; 1 thread: 1.5 s).
"""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
