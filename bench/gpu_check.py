"""The first thing to run on new GPU hardware: one report of what mssr's GPU path does there, in <= 10 minutes.

    python bench/gpu_check.py                       # writes gpu_check.json, prints one line per check
    python bench/gpu_check.py --out report.json --budget-s 600

Checks, each in its own subprocess with its own deadline (a hang or crash in one is recorded, the others run):

1. ``facts``: torch and CUDA versions, the device, its memory, bf16 support, the NCCL version.
2. ``fsdp_bf16_step``: ``bench/scale_check.py`` under ``torchrun --nproc_per_node 1`` with
   ``parallel.strategy=fsdp``, bf16 compute over fp32 master weights, a shrunken Qwen2.5-VL-3B shape and 2 steps:
   the step time and its stages, and the peak memory against ``mssr plan``'s estimate for the same config.
3. ``vllm_sync``: 2 training steps of the tiny preset with ``rollout.engine=vllm``: the weight-sync time and the
   sampler/trainer log-prob mismatch (``rollout/logprob_diff_mean``, ``_max``) after each sync.
4. ``vllm_sleep``: a vLLM engine over the tiny preset, free GPU memory before ``sleep(level=1)``, while asleep
   and after ``wake_up()``, and whether it still generates.

Without a CUDA device (or without vLLM, for 3-4) a check is skipped with its reason, and the script says in one
line what it skipped and why; the default test suite runs it that way (``tests/bench/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def facts() -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"torch": torch.__version__, "cuda_build": torch.version.cuda}
    out["cuda_available"] = torch.cuda.is_available()
    if out["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        out.update(
            device=props.name,
            devices=torch.cuda.device_count(),
            memory_gb=round(props.total_memory / 1e9, 1),
            capability=f"{props.major}.{props.minor}",
            bf16=torch.cuda.is_bf16_supported(),
        )
        try:
            out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        except Exception as exc:  # pragma: no cover - depends on the build
            out["nccl"] = f"unavailable ({exc})"
    try:
        import vllm

        out["vllm"] = vllm.__version__
    except Exception as exc:
        out["vllm"] = None
        out["vllm_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def _run(cmd: list[str], timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": round(time.perf_counter() - start, 1)}
    out = {"status": "ok" if done.returncode == 0 else "failed", "rc": done.returncode}
    out["seconds"] = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        out["stderr_tail"] = done.stderr[-2000:]
    return out


def check_fsdp(work: Path, timeout_s: float) -> dict[str, Any]:
    report = work / "scale.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29517",
           str(ROOT / "bench" / "scale_check.py"), "--shape", "qwen2.5-vl-3b", "--shrink", "--strategy", "fsdp",
           "--steps", "2", "--rollouts", "32", "--max-new-tokens", "256", "--out", str(report)]  # fmt: skip
    out = _run(cmd, timeout_s)
    if report.is_file():
        out["result"] = json.loads(report.read_text())
    return out


def _tiny_run(work: Path, name: str, timeout_s: float, *extra: str) -> dict[str, Any]:
    run = work / name
    cmd = [sys.executable, "-m", "mssr", "train", "model.warm_start=false", "device=cuda", "steps=2",
           "rollout.rollouts_per_step=16", "val.every=0", "val.at_start=false", "checkpoint.every=0",
           "logging.tensorboard=false", "logging.plot=false", "data.builtin.n_train=32", "data.builtin.n_val=8",
           f"output_dir={run}", *extra]  # fmt: skip
    out = _run(cmd, timeout_s, env={"MSSR_CACHE": str(work / "cache")})
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        keep = ("rollout/logprob_diff_mean", "rollout/logprob_diff_max", "timing_s/sync", "timing_s/step")
        out["steps"] = [
            {"step": r["step"], **{k: r[k] for k in keep if k in r}} for r in rows if r["step"] > 0
        ]
    return out


SLEEP_SCRIPT = r"""
import json, sys, torch
from mssr.models import build_tiny_policy
from mssr.rollout.vllm_engine import build_engine
policy = build_tiny_policy("tiny")
policy.model.to("cuda")
engine = build_engine("vllm", policy.model, policy.processor, gpu_memory_utilization=0.3, sleep_level=1)
free = lambda: torch.cuda.mem_get_info()[0] / 1e9
out = {"free_gb_awake": free()}
engine.before_update()  # the trainer's call after generating: sleep at level 1
out["free_gb_asleep"] = free()
out["sync_s"] = engine.after_update(policy.model)  # wake up, load the weights
out["free_gb_woken"] = free()
print(json.dumps(out))
"""


def check_sleep(timeout_s: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", SLEEP_SCRIPT], capture_output=True, text=True,
                              timeout=timeout_s, cwd=ROOT)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": round(time.perf_counter() - start, 1)}
    out: dict[str, Any] = {"status": "ok" if done.returncode == 0 else "failed", "rc": done.returncode}
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if lines:
        out["result"] = json.loads(lines[-1])
        out["result"]["released_gb"] = out["result"]["free_gb_asleep"] - out["result"]["free_gb_awake"]
    if done.returncode != 0:
        out["stderr_tail"] = done.stderr[-2000:]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    ap.add_argument("--budget-s", type=float, default=600.0, help="wall-clock for all checks (default 600)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    report: dict[str, Any] = {"facts": facts(), "checks": {}}
    f = report["facts"]
    skipped: list[str] = []
    share = {"fsdp_bf16_step": 0.45, "vllm_sync": 0.3, "vllm_sleep": 0.2}
    if not f["cuda_available"]:
        why = "this torch build has no CUDA" if f["cuda_build"] is None else "no CUDA device is visible"
        for name in share:
            report["checks"][name] = {"status": "skipped", "why": why}
        skipped.append(f"every check ({why}: torch {f['torch']})")
    else:
        with tempfile.TemporaryDirectory(prefix="mssr-gpu-check-") as tmp:
            work = Path(tmp)
            report["checks"]["fsdp_bf16_step"] = check_fsdp(work, share["fsdp_bf16_step"] * args.budget_s)
            if f["vllm"] is None:
                for name in ("vllm_sync", "vllm_sleep"):
                    report["checks"][name] = {
                        "status": "skipped",
                        "why": f"vLLM not importable ({f['vllm_error']})",
                    }
                skipped.append("the vLLM checks (vLLM is not importable)")
            else:
                report["checks"]["vllm_sync"] = _tiny_run(
                    work, "vllm", share["vllm_sync"] * args.budget_s, "rollout.engine=vllm"
                )
                report["checks"]["vllm_sleep"] = check_sleep(share["vllm_sleep"] * args.budget_s)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(report, indent=1))
    for name, c in report["checks"].items():
        print(f"{name}: {c['status']}" + (f" ({c['why']})" if "why" in c else f", {c.get('seconds', 0)} s"))
    if skipped:
        print(f"gpu_check: skipped {'; '.join(skipped)} — run it on a machine with a GPU; report: {args.out}")
    else:
        print(f"gpu_check: done in {report['seconds']} s; report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
