"""Progress shown as a person following a log file sees it: plain lines when stderr is not a terminal."""

from __future__ import annotations

import io
import json

from mssr.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_when_not_a_terminal_with_seconds_per_step_and_eta():
    out, sink, clock = io.StringIO(), [], _Clock()
    bar = Progress(10, 2, description="mssr", stream=out, sink=sink.append, clock=clock)
    for step in (3, 4):
        clock.t += 4.0
        bar.update(step, {"critic/score/mean": 0.25, "actor/entropy": 0.05, "actor/kl_loss": 0.001}, 0.5)
    bar.close()
    lines = out.getvalue().splitlines()
    # step 4: 8 s for 2 steps since the resume at step 2 -> 4.00 s/step, 6 steps left -> 24 s
    assert lines == [
        "mssr step 3/10 · reward 0.250 · val 0.500 · entropy 0.0500 · kl 0.0010 · 4.00 s/step · ETA 0m28s",
        "mssr step 4/10 · reward 0.250 · val 0.500 · entropy 0.0500 · kl 0.0010 · 4.00 s/step · ETA 0m24s",
    ]
    assert sink == lines


def test_lines_at_most_every_n_seconds_and_always_the_last_step():
    out, clock = io.StringIO(), _Clock()
    bar = Progress(5, description="sft", stream=out, every_s=10.0, clock=clock)
    for step in range(1, 6):
        clock.t += 3.0
        bar.show(step, f"loss {step}")
    steps = [line.split(" · ")[0] for line in out.getvalue().splitlines()]
    assert steps == ["sft step 1/5", "sft step 5/5"]  # t = 3 (first), 6/9/12 < 13 (throttled), last step
    quiet = io.StringIO()
    Progress(5, enabled=False, stream=quiet).show(1, "x")
    assert quiet.getvalue() == ""


def test_training_into_a_file_shows_one_line_per_step_and_run_log_has_them(make_config, tmp_path, capsys):
    from mssr.trainer.trainer import RLTrainer

    cfg = make_config("logging.progress=true", "steps=3", out=tmp_path / "r")
    RLTrainer(cfg).train()
    err = capsys.readouterr().err  # pytest's captured stderr is not a terminal, like `> log 2>&1`
    lines = [x for x in err.splitlines() if x.startswith("mssr step ")]
    assert [x.split(" · ")[0] for x in lines] == ["mssr step 1/3", "mssr step 2/3", "mssr step 3/3"]
    assert all(" s/step · ETA " in x and "reward " in x and "entropy " in x for x in lines)
    run_log = (tmp_path / "r" / "run.log").read_text()
    assert all(x in run_log for x in lines)
    assert len(json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])) > 0
