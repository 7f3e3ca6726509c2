"""A stand-in for ``python -m mssr train -c run.yaml`` that follows the trainer's run-directory protocol.

It resumes from its latest complete checkpoint, appends one metrics line per step (validation accuracy
``0.1 * step``, entropy ``0.3``), checkpoints every step, and exits 1 after step ``$FAKE_FAIL_AT`` when set.
With ``$FAKE_SLEEP`` each step takes that many seconds, and SIGINT stops it after the current step with exit
code 130, like the real trainer.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml


def main() -> int:
    cfg = yaml.safe_load(Path(sys.argv[1]).read_text())
    out = Path(cfg["output_dir"])
    ckpts = out / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    done = [int(p.name[5:]) for p in ckpts.glob("step_*") if (p / "COMPLETE").is_file()]
    step = max(done, default=0)
    fail_at = int(os.environ.get("FAKE_FAIL_AT", "0"))
    sleep = float(os.environ.get("FAKE_SLEEP", "0"))
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with (out / "launches.txt").open("a") as fh:
        fh.write(f"{step}\n")
    with (out / "metrics.jsonl").open("a") as fh:
        if step == 0:
            fh.write(json.dumps({"step": 0, "val/accuracy": 0.0}) + "\n")
        while step < cfg["steps"] and not stop:
            step += 1
            time.sleep(sleep)
            rec = {
                "step": step,
                "critic/score/mean": 0.5,
                "actor/entropy": 0.3,
                "timing_s/step": 1.0,
                "train/rollouts": step * cfg["rollout"]["rollouts_per_step"],
                "val/accuracy": 0.1 * step,
            }
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            d = ckpts / f"step_{step:06d}"
            d.mkdir()
            (d / "trainer_state.pt").write_text("fake")
            (d / "COMPLETE").write_text("")
            if fail_at and step == fail_at:
                return 1
    return 130 if stop and step < cfg["steps"] else 0  # interrupted: checkpointed but unfinished


if __name__ == "__main__":
    raise SystemExit(main())
