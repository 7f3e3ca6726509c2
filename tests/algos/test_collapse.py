"""The collapse detector on synthetic curves: a collapse, a slow decline, noise without collapse."""

import math
import random

from mssr.algos.collapse import CollapseDetector, detect_collapse


def test_sharp_entropy_collapse_is_flagged_shortly_after_it_happens():
    # the paper's MVSR shape: ~0.08, a slight rise, then 0.08 -> 0.03 within ten steps around step 40
    curve = [(s, 0.08 + 0.0002 * s) for s in range(1, 36)]
    curve += [(s, 0.087 - (s - 35) * 0.0055) for s in range(36, 46)]
    curve += [(s, 0.03 - (s - 45) * 0.0003) for s in range(46, 120)]
    out = detect_collapse(curve)
    assert out["entropy_collapse_step"] is not None and 38 <= out["entropy_collapse_step"] <= 50


def test_slow_decline_is_not_a_collapse():
    curve = [(s, 0.08 - 0.0002 * s) for s in range(1, 121)]  # 0.08 -> 0.056 over 120 steps (ratio 0.7)
    assert detect_collapse(curve)["entropy_collapse_step"] is None


def test_noise_around_a_level_is_not_a_collapse():
    rng = random.Random(0)
    curve = [(s, 0.07 * (1 + 0.25 * rng.uniform(-1, 1))) for s in range(1, 300)]
    assert detect_collapse(curve)["entropy_collapse_step"] is None


def test_a_single_dip_does_not_trigger_but_a_sustained_one_does():
    dip = [(s, 0.08) for s in range(1, 20)] + [(20, 0.01)] + [(s, 0.08) for s in range(21, 40)]
    assert detect_collapse(dip, ema=1.0)["entropy_collapse_step"] is None
    sustained = [(s, 0.08) for s in range(1, 20)] + [(s, 0.01) for s in range(20, 30)]
    assert detect_collapse(sustained, ema=1.0)["entropy_collapse_step"] == 22  # patience 3


def test_validation_accuracy_collapse():
    val = [
        (s, v)
        for s, v in zip(
            range(10, 130, 10), [0.3, 0.35, 0.42, 0.44, 0.43, 0.30, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
        )
    ]
    assert detect_collapse([], val)["val_collapse_step"] == 80
    noisy = [(s, 0.4 + 0.05 * math.sin(s)) for s in range(10, 200, 10)]
    assert detect_collapse([], noisy)["val_collapse_step"] is None


def test_state_round_trip():
    det = CollapseDetector()
    for s in range(1, 10):
        det.update_entropy(s, 0.08)
    again = CollapseDetector()
    again.load_state_dict(det.state_dict())
    for s in range(10, 14):
        assert det.update_entropy(s, 0.01) == again.update_entropy(s, 0.01)
    # EMA(0.5): 0.045 (not yet < 0.04), 0.0275, 0.01875, 0.014375 -> third low value at step 13
    assert det.entropy_collapse_step == again.entropy_collapse_step == 13
