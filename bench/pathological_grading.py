"""`mssr grade` on a file of degenerate responses: per-response time against the deadline, peak memory, and no
worker left running after SIGTERM (docs/training.md "Faults", issue 26's acceptance).

    python bench/pathological_grading.py --problems ../shared/data/mathvista/testmini.json [--timeout 2]

Builds a MathVista-format responses file whose responses are the kinds of :mod:`mssr.rewards.pathological` at
1 KB, 100 KB and 10 MB (one problem each, taken from ``--problems`` in order), then

1. grades it with ``--workers 0`` and with ``--workers 2`` (``--timeout`` seconds per response), each in a child
   process: wall-clock, the report's timeouts, and the child's peak RSS (``getrusage`` of the children);
2. starts ``--workers 2`` again, sends it SIGTERM after ``--kill-after`` seconds and lists any process of its
   session still alive 5 s later.

Prints one line per run and a verdict. No GPU, no network.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def build(problems: Path, out: Path) -> int:
    from mssr.rewards.pathological import pathological_responses

    data = json.loads(problems.read_text())
    items = pathological_responses((1_000, 100_000, 10_000_000))
    rows = {}
    for (pid, problem), (name, response, _, _) in zip(data.items(), items, strict=False):
        rows[pid] = {**problem, "response": response, "extraction": "", "true_false": False, "_kind": name}
    out.write_text(json.dumps(rows))
    return len(rows)


def grade(problems: Path, responses: Path, workers: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "mssr", "grade", "mathvista", "--problems", str(problems), "--responses",
           str(responses), "--workers", str(workers), "--timeout", str(timeout), "--show", "0"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    line = next((x for x in done.stdout.splitlines() if "timeouts" in x), "").strip()
    return {"workers": workers, "rc": done.returncode, "wall_s": round(wall, 1), "report": line,
            "peak_rss_mb": round(max(peak_kb, before) / 1024), "stderr": done.stderr[-500:]}  # fmt: skip


def sigterm(problems: Path, responses: Path, after: float, timeout: float) -> list[str]:
    cmd = [sys.executable, "-m", "mssr", "grade", "mathvista", "--problems", str(problems), "--responses",
           str(responses), "--workers", "2", "--timeout", str(timeout), "--show", "0"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(after)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    time.sleep(5)
    left = subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "-s", str(proc.pid)], capture_output=True, text=True
    )
    return [x.strip() for x in left.stdout.splitlines() if x.strip() and " Z" not in x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=Path, required=True, help="MathVista testmini.json")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--kill-after", type=float, default=4.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        responses = Path(tmp) / "pathological.json"
        n = build(args.problems, responses)
        size = responses.stat().st_size / 1e6
        print(f"{n} pathological responses ({size:.0f} MB file), deadline {args.timeout} s each")
        for workers in (0, 2):
            r = grade(args.problems, responses, workers, args.timeout)
            print(f"  --workers {workers}: rc {r['rc']}, {r['wall_s']} s in all ({r['wall_s'] / n:.2f} s per response), "
                  f"peak RSS {r['peak_rss_mb']} MB; {r['report']}")  # fmt: skip
            if r["rc"] != 0:
                print("    " + r["stderr"])
        left = sigterm(args.problems, responses, args.kill_after, args.timeout)
        print(
            f"  SIGTERM after {args.kill_after} s: {len(left)} process(es) of its session left"
            + (": " + "; ".join(left) if left else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
