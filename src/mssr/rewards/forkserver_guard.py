"""Preloaded by the reward pool's forkserver (``ProcessRunner``), and meant to be imported nowhere else: it ties
the forkserver's life to the process that started it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux).

The workers are the forkserver's children and die with it (:func:`mssr.rewards.runner.die_with_parent`); the
forkserver on its own would outlive a killed trainer, because every worker holds the write end of the pipe
whose end-of-file tells it that its starter is gone. So: trainer or ``mssr grade`` killed -> forkserver killed
-> workers killed, even while a worker is stuck in C code.
"""

from __future__ import annotations

import sys

if sys.argv == ["-c"] and "multiprocessing.forkserver" in sys.modules:  # in the forkserver process only
    from mssr.rewards.runner import die_with_parent

    die_with_parent()
