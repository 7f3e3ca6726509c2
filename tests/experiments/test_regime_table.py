"""docs/results/regime/regime_table.py: per-run figures of the regime study, against hand-computed values."""

import math

import pytest

from .conftest import load_script


def _module():
    return load_script("docs/results/regime/regime_table.py")


def _store(root, study: str, arm: str, seed: int, rows: list[dict]) -> None:
    """A committed run as ``collect`` writes it: metrics/STUDY/ARM/seedK.jsonl.gz."""
    import gzip
    import json

    d = root / "metrics" / study / arm
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed{seed}.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    )


def _rows():
    rows = [{"step": 0, "val/accuracy": 0.40, "init/time_s": 10.0}]
    entropy = [0.05, 0.06, 0.05, 0.04, 0.02, 0.02, 0.03, 0.02]  # peak 0.06; first < 0.03 at step 5
    reward = [0.5, 0.5, 0.0, 0.3, 0.0, 0.0, 0.1, 0.1]
    val = {4: 0.30, 6: 0.15, 8: 0.04}  # ≤ half of 0.40 at step 6, ≤ 0.05 at step 8
    for i, (h, r) in enumerate(zip(entropy, reward), start=1):
        row = {"step": i, "actor/entropy": h, "critic/score/mean": r, "timing_s/step": 2.0,
               "adv/raw_adv_std": 0.6, "actor/kl_loss": 0.1 * i, "actor/updates": 16.0,
               "train/rollouts": 64 * i, "train/init_rollouts": 1000, "train/gen_tokens": 100 * i,
               "train/init_gen_tokens": 5000}  # fmt: skip
        if i in val:
            row["val/accuracy"] = val[i]
        rows.append(row)
    return rows


def test_run_summary_by_hand():
    s = _module().run_summary(_rows(), floor=0.05)
    assert s["start"] == 0.40 and s["final"] == 0.04
    assert s["onset"] == 8 and s["half"] == 6
    # 3-step means of the training reward: .5 .5 .333 .267 .1 .1 .033 .067 -> <= half of step 1's (.25) at
    # step 5, <= 0.05 at step 7
    assert s["reward_half"] == 5 and s["reward_floor"] == 7
    assert s["ent_half"] == 5 and s["ent_half_first"] is True  # before the onset at step 8
    assert s["ent_first5"] == pytest.approx((0.05 + 0.06 + 0.05 + 0.04 + 0.02) / 5)
    assert s["ent_last5"] == pytest.approx((0.04 + 0.02 + 0.02 + 0.03 + 0.02) / 5)
    assert s["kl_last5"] == pytest.approx(0.1 * (4 + 5 + 6 + 7 + 8) / 5)
    assert s["zero_reward_before"] == 3  # steps 3, 5 and 6 are before step 8
    expect = (2 * math.sqrt(0.25) + 0.0 + math.sqrt(0.21) + 0.0) / 5
    assert s["reward_std_first5"] == pytest.approx(expect)
    assert s["rollouts"] == 64 * 8 + 1000 and s["tokens"] == 800 + 5000
    assert s["wall"] == 10.0 + 8 * 2.0


def test_collect_then_table(tmp_path, monkeypatch):
    import gzip
    import json

    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)
    runs = tmp_path / "cmp"
    for arm in ("mvsr", "grpo"):
        d = runs / "runs" / arm / "seed0"
        d.mkdir(parents=True)
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
        (d / "config.yaml").write_text("seed: 0\n")
    manifest = {"runs": [{"arm": a, "dir": f"runs/{a}/seed0", "status": "done"} for a in ("mvsr", "grpo")]}
    (runs / "manifest.json").write_text(json.dumps(manifest))
    (runs / "compare.json").write_text("{}")
    m.collect(runs, "s")
    stored = tmp_path / "metrics" / "s" / "mvsr" / "seed0.jsonl.gz"
    assert gzip.decompress(stored.read_bytes()) == (runs / "runs/mvsr/seed0/metrics.jsonl").read_bytes()
    text = m.tables("s", 0.05, [4, 8])
    assert "| mvsr | 1 | 16.0 | 0.400 | 0.300 | 0.040 | 8 (1/1) | 6 (1/1) |" in text


def test_collect_partial_takes_unfinished_runs_up_to_their_last_complete_line(tmp_path, monkeypatch):
    import gzip
    import json

    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)
    runs = tmp_path / "cmp"
    d = runs / "runs" / "grpo" / "seed1"
    d.mkdir(parents=True)
    whole = "".join(json.dumps(r) + "\n" for r in _rows())
    (d / "metrics.jsonl").write_text(whole + '{"step": 9, "actor/ent')  # a line being written
    (d / "config.yaml").write_text("seed: 1\n")
    (runs / "manifest.json").write_text(json.dumps({"runs": [{"arm": "grpo", "dir": "runs/grpo/seed1",
                                                               "status": "running"}]}))  # fmt: skip
    (runs / "compare.json").write_text("{}")
    stored = tmp_path / "metrics" / "s" / "grpo" / "seed1.jsonl.gz"
    m.collect(runs, "s")
    assert not stored.exists()  # only finished runs by default
    m.collect(runs, "s", partial=True, arms=["mvsr"])
    assert not stored.exists()  # not one of the arms asked for
    m.collect(runs, "s", partial=True)
    assert gzip.decompress(stored.read_bytes()).decode() == whole
    assert m.drift_summary([json.loads(x) for x in whole.splitlines()])["last"] == 8


def test_drift_summary_by_hand():
    """60 steps: entropy 0.10 for steps 1-20, 0.04 for 21-40, 0.08 for 41-60; validation 0.3, 0.9 (step 30),
    0.7 (step 50), 0.75 (step 60); probes of -0.002 at steps 25 and 50."""
    rows = [{"step": 0, "val/accuracy": 0.3}]
    for i in range(1, 61):
        h = 0.10 if i <= 20 else 0.04 if i <= 40 else 0.08
        row = {"step": i, "actor/entropy": h, "critic/score/mean": i / 100, "actor/kl_loss": 0.01}
        if i in (25, 50):
            row["probe/entropy_psi"] = -0.002
        if i in (30, 50, 60):
            row["val/accuracy"] = {30: 0.9, 50: 0.7, 60: 0.75}[i]
        rows.append(row)
    s = _module().drift_summary(rows)
    assert s["last"] == 60 and sorted(s["blocks"]) == [10, 50]
    assert s["ent_first10"] == pytest.approx(0.10) and s["ent_last10"] == pytest.approx(0.08)
    # 10-step means fall from 0.10 (peak) to 0.04 at step 30; the first below 0.05: step 29 (9 × 0.04 + 0.10)
    assert s["ent_low"] == pytest.approx(0.04) and s["ent_low_step"] == 30
    assert s["ent_below_half"] == 29
    assert s["val_drop"] == 50  # 0.7 is 0.2 below the best so far (0.9)
    b = s["blocks"][50]
    assert b["val"] == 0.7 and b["entropy"] == pytest.approx(0.08) and b["kl"] == pytest.approx(0.01)
    assert b["reward"] == pytest.approx(sum(range(41, 51)) / 1000)
    assert b["probe"] == pytest.approx(-0.002)  # the probes of steps 1-50


def test_collected_configs_carry_no_machine_paths(tmp_path):
    m = _module()
    run_dir, cache = tmp_path / "runs" / "mvsr" / "seed0", tmp_path / "cache" / "data" / "builtin-00ab"
    text = f"steps: 5\noutput_dir: {run_dir}\ndata:\n  train: {cache}\n"  # absolute, as the run wrote them
    assert m.portable_config(text, "runs/s/mvsr/seed0") == (
        "steps: 5\noutput_dir: runs/s/mvsr/seed0\ndata:\n"
        "  train: null  # the built-in task (builtin-00ab in the cache of the machine that ran it)\n"
    )
    with pytest.raises(ValueError, match="absolute paths"):
        m.portable_config(f"model:\n  path: {tmp_path / 'policy'}\n", "runs/s/a/seed0")
    # and every committed one
    import re
    from pathlib import Path

    committed = sorted((Path(m.__file__).parent / "metrics").glob("*/*/seed*.config.yaml"))
    assert committed
    for f in committed:
        assert not re.search(r"(?m): /", f.read_text(encoding="utf-8")), f


def test_shaping_tables_by_hand(tmp_path, monkeypatch):
    """Two seeds of a shaped arm (ψ logged) and an unshaped one (not logged): phase means, then mean ± std."""
    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)

    for seed, offset in ((0, 0.1), (1, 0.3)):
        # steps 1-4: token mean of Ã = offset, then 2 × offset; ψ/|Â| = step / 10; steps 5-6 log no shaping figure
        rows = [{"step": 0, "val/accuracy": 0.2}]
        rows += [{"step": i, "critic/advantages/mean": offset * (1 if i <= 2 else 2), "mssr/psi_rel": i / 10}
                 for i in range(1, 5)]  # fmt: skip
        rows += [{"step": i, "critic/advantages/mean": 0.0} for i in (5, 6)]
        _store(tmp_path, "s", "mssr", seed, rows)
        _store(
            tmp_path,
            "s",
            "mvsr",
            seed,
            [{"step": i, "critic/advantages/mean": -0.01 * seed} for i in range(1, 7)],
        )
    assert m.phase_means(m.load_study("s")["mssr"][0][1], [(1, 2), (3, 6)], "mssr/psi_rel") == pytest.approx(
        [0.15, 0.35]
    )
    text = m.shaping_tables(["s"], [(1, 2), (3, 6)])
    # steps 3-6 of seed 0: (0.2 + 0.2 + 0 + 0) / 4 = 0.1; of seed 1: 0.3; mean 0.2, std 0.1414
    assert "| mssr | 2 | 0.200 ± 0.141 | 0.200 ± 0.141 |" in text
    assert "| mvsr | 2 | -0.005 ± 0.007 | -0.005 ± 0.007 |" in text
    psi = text.split("ψ / |Â|")[1].split("cap binds")[0]
    assert (
        "| mssr | 2 | 0.150 ± 0.000 | 0.350 ± 0.000 |" in psi and "mvsr" not in psi
    )  # never logged: left out
    with pytest.raises(SystemExit, match="FIRST <= LAST"):
        m._phases("5-1")


def test_plot_writes_a_png_and_refuses_a_study_with_no_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)
    for arm, seeds in (("mvsr", (0, 3)), ("mssr", (1,))):
        for seed in seeds:
            rows = [{"step": 0, "val/accuracy": 0.3}]
            rows += [{"step": i, "actor/entropy": 0.1 - i / 1000} for i in range(1, 31)]
            rows[-1]["val/accuracy"] = 0.9
            _store(tmp_path, "s", arm, seed, rows)
    out = m.plot_drift(["s"], tmp_path / "fig" / "drift.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [seed for seed, _ in m.load_study("s")["mvsr"]] == ["seed0", "seed3"]
    with pytest.raises(SystemExit, match="no runs"):
        m.plot_drift(["absent"], tmp_path / "x.png")


def test_t_two_sided_p_against_printed_tables():
    m = _module()
    # Student's t table, two-sided 0.05 and 0.01 critical values
    assert m.t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=2e-4)
    assert m.t_two_sided_p(4.604, 4) == pytest.approx(0.01, abs=2e-4)
    assert m.t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=2e-4)
    # one degree of freedom is Cauchy: p = 1 − (2/π)·atan(t)
    assert m.t_two_sided_p(3.0, 1) == pytest.approx(1 - 2 / math.pi * math.atan(3.0), abs=1e-6)
    assert m.t_two_sided_p(0.0, 4) == pytest.approx(1.0) and m.t_two_sided_p(-math.inf, 3) == 0.0


def test_pair_table_by_hand(tmp_path, monkeypatch):
    """Arm a keeps 1.0, 1.2, 0.8 of its entropy (seeds 0, 1, 2), arm b 0.5, 0.5, 0.6 (seeds 0, 1, 2, 3: seed 3
    has no partner): differences 0.5, 0.7, 0.2 — mean 0.4667, std 0.2517, t = 3.21 on 2 degrees of freedom. Arm b
    is stored in a second study, as a variant run later in its own directory: pairs are formed across studies."""
    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)
    kept = {"a": [1.0, 1.2, 0.8], "b": [0.5, 0.5, 0.6, 0.9]}
    for arm, ratios in kept.items():
        for seed, ratio in enumerate(ratios):  # entropy 0.1 for steps 1-10, then 0.1 × ratio for steps 11-30
            rows = [{"step": i, "actor/entropy": 0.1 if i <= 10 else 0.1 * ratio} for i in range(1, 31)]
            _store(tmp_path, "s" if arm == "a" else "s2", arm, seed, rows)
    text = m.pair_table(["s", "s2"], "a", "b")
    assert "| 1 | 1.20 | 0.50 | +0.70 |" in text and "| 3 |" not in text
    t = 0.4667 / (0.2517 / math.sqrt(3))
    assert f"a higher in 3 of 3 pairs; mean difference +0.47 ± 0.25; paired t = {t:.2f} (2 degrees" in text
    assert f"two-sided p = {m.t_two_sided_p(t, 2):.3f}" in text
    with pytest.raises(SystemExit, match="no arm 'c'"):
        m.pair_table(["s", "s2"], "a", "c")


def test_saturated_tables_by_hand(tmp_path, monkeypatch):
    """Two seeds, phases 1-2 and 3-4; all-correct steps are those with critic/score/mean = 1 (a step-0 row with
    only validation is not a step). Seed 0 is all correct at steps 2-4, seed 1 at step 3 only."""
    m = _module()
    monkeypatch.setattr(m, "HERE", tmp_path)
    runs = {  # per step 1-4: (reward mean, raw advantage std, gradient norm)
        0: [(0.5, 0.3, 1.0), (1.0, 0.02, 0.5), (1.0, 0.04, 0.4), (1.0, 0.06, 0.2)],
        1: [(0.5, 0.3, 0.8), (0.5, 0.3, 0.6), (1.0, 0.01, 0.3), (0.5, 0.3, 0.9)],
    }
    for seed, steps in runs.items():
        rows = [{"step": 0, "val/accuracy": 0.2}]
        rows += [{"step": i, "critic/score/mean": r, "adv/raw_adv_std": a, "actor/grad_norm": g}
                 for i, (r, a, g) in enumerate(steps, start=1)]  # fmt: skip
        _store(tmp_path, "s", "a", seed, rows)
    text = m.saturated_tables(["s"], [(1, 2), (3, 4)])
    share, raw, grad_sat, grad_other = text.split(":\n\n")[1:]
    # share: phase 1 seeds 0.5, 0.0; phase 2 seeds 1.0, 0.5 (sample std of two values d apart: d/√2)
    assert "| a | 2 | 0.250 ± 0.354 | 0.750 ± 0.354 |" in share
    # raw std on all-correct steps: phase 1 only seed 0 has one (0.02); phase 2 seed 0 (0.04+0.06)/2, seed 1 0.01
    assert "| a | 2 | 0.020 | 0.030 ± 0.028 |" in raw
    assert "| a | 2 | 0.500 | 0.300 ± 0.000 |" in grad_sat
    # the other steps: phase 1 seed 0 1.0, seed 1 (0.8+0.6)/2; phase 2 only seed 1 has one (0.9)
    assert "| a | 2 | 0.850 ± 0.212 | 0.900 |" in grad_other
