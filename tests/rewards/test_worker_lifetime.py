"""Reward worker processes die with their parent: none is left running after SIGTERM or SIGKILL to it, also while
an item is stuck (issue 26, class 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

HOLDER = r"""
import sys, time
from mssr.rewards.runner import ProcessRunner
runner = ProcessRunner(2)
runner._workers = [runner._spawn() for _ in range(2)]
print(" ".join(str(w.proc.pid) for w in runner._workers), flush=True)
runner.run(time.sleep, [(1000,), (1000,)], timeout_s=1000)   # both workers busy for 1000 s
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped by nobody yet) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_their_parent(sig):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        time.sleep(0.5)  # the items are running
        proc.send_signal(sig)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "a reward worker outlived its parent"
    finally:
        proc.kill()
