"""Long SFT checks (``pytest -m slow``): the tiny policy learns a visual task, and the default warm start
lands in the accuracy band that leaves RL room (25–60% sampled accuracy)."""

from __future__ import annotations

import json
import random
import time

import pytest
from PIL import Image, ImageDraw

from mssr.sft import SFTConfig, read_metrics, run_sft

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "orange": (250, 150, 20),
    "purple": (140, 40, 170),
}


def _colour_dataset(out, n_train: int, n_val: int) -> None:
    """One 30-px square of one of five colours; the answer needs the image (chance 0.2)."""
    (out / "images").mkdir(parents=True)
    for split, n, seed in (("train", n_train, 0), ("val", n_val, 1), ("test", n_val, 2)):
        rng = random.Random(seed)
        rows = []
        for i in range(n):
            colour = rng.choice(sorted(COLOURS))
            img = Image.new("RGB", (64, 64), "white")
            x, y = rng.randint(2, 30), rng.randint(2, 30)
            ImageDraw.Draw(img).rectangle([x, y, x + 30, y + 30], fill=COLOURS[colour])
            rel = f"images/{split}-{i}.png"
            img.save(out / rel)
            rows.append(
                {
                    "id": f"{split}-{i}",
                    "problem": "<image>What color is the square?",
                    "images": [rel],
                    "answer": colour,
                    "answer_type": "text",
                    "family": "colour",
                    "solution": f"<think>the square is {colour}.</think> \\boxed{{{colour}}}",
                }
            )
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_tiny_policy_learns_a_visual_task(tmp_path):
    """Measured on the shared 2-core machine: 0.44 at 50 steps, 0.80 at 100, 0.98 at 150 (batch 16, lr 5e-3)."""
    _colour_dataset(tmp_path / "data", 1000, 100)
    cfg = SFTConfig(
        data_dir=str(tmp_path / "data"),
        instruction=None,
        max_steps=300,
        eval_every=50,
        stop_accuracy=0.9,
        n_dev=100,
        n_test_eval=100,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
        threads=1,
    )
    m = read_metrics(run_sft(cfg))
    assert m["test"]["accuracy"] >= 0.8, m["checks"]


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_default_warm_start_lands_in_band(tmp_path):
    cfg = SFTConfig(cache_dir=str(tmp_path / "cache"), progress=False, threads=2)
    t0 = time.perf_counter()
    run_dir = run_sft(cfg)
    first = time.perf_counter() - t0
    m = read_metrics(run_dir)
    report = m["test"]  # never trained on, never used to decide when to stop
    print(
        f"SFT tiny: {m['steps']} steps, {first:.0f} s, test accuracy {report['accuracy']:.3f}, "
        f"sampled-token entropy {report['sampled_token_entropy']:.4f}, full {report['full_entropy']:.4f}"
    )
    assert 0.25 <= report["accuracy"] <= 0.60, report
    assert report["format_rate"] >= 0.9
    assert report["sampled_token_entropy"] > 0 and report["full_entropy"] > report["sampled_token_entropy"]
    t0 = time.perf_counter()
    assert run_sft(cfg) == run_dir
    assert time.perf_counter() - t0 < 5.0  # the cached base is reused, not retrained
