"""bench/gpu_check.py on a machine without a GPU: it runs to its skip report, saying in one line what it
skipped and why, and writes the facts it could read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the real check takes minutes")
def test_gpu_check_skips_in_one_line_without_a_gpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("gpu_check: skipped every check (") and "no CUDA" in last and str(out) in last
    report = json.loads(out.read_text())
    assert report["facts"]["torch"] == torch.__version__ and report["facts"]["cuda_available"] is False
    assert {c["status"] for c in report["checks"].values()} == {"skipped"}
    assert set(report["checks"]) == {"fsdp_bf16_step", "vllm_sync", "vllm_sleep"}
