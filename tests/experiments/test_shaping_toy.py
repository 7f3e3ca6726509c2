"""docs/results/regime/shaping_toy.py: the toy of shaping's cumulative effect on entropy."""

import argparse

import pytest
import torch

from .conftest import load_script


def _args(**kw):
    base = dict(
        steps=30, seeds=1, contexts=16, positions=4, vocab=8, batch=8, lr=0.01, rho=0.9, optim="adam", forks=0.0
    )
    return argparse.Namespace(**{**base, **kw})


def test_offsets_and_gains_are_what_each_arm_adds():
    toy = load_script("docs/results/regime/shaping_toy.py")
    none = toy.run("none", 0, _args())
    bias = toy.run("bias", 0, _args())
    sign = toy.run("sign", 0, _args())
    assert len(none["entropy"]) == 31 and none["offset"] == [0.0] * 30 and not none["gain_pos"]
    assert bias["offset"] == pytest.approx([0.3] * 30)
    # ψ = |Â|/κ everywhere (α = ∞, H ≡ 1): positive tokens weigh 1 + 1/2, negative 1 − 1/2, whenever both occur
    assert all(g == pytest.approx(1.5) for g in sign["gain_pos"])
    assert all(g in (pytest.approx(0.5), 1.0) for g in sign["gain_neg"])
    # symmetric shaping widens both signs: gains ≥ 1 on each side
    sym = toy.run("full_symmetric", 0, _args())
    assert all(g >= 1.0 for g in sym["gain_pos"] + sym["gain_neg"]) and any(g > 1.0 for g in sym["gain_neg"])
    # the same task and the same samples at step 0 for every arm
    assert bias["entropy"][0] == none["entropy"][0] and bias["accuracy"][0] == none["accuracy"][0]


def test_adam_is_blind_to_the_advantages_scale_but_sgd_is_not():
    toy = load_script("docs/results/regime/shaping_toy.py")
    none, scaled = toy.run("none", 1, _args()), toy.run("scaled", 1, _args())
    assert scaled["entropy"] == pytest.approx(none["entropy"], abs=1e-5)
    sgd = _args(optim="sgd", lr=5.0)
    assert toy.run("scaled", 1, sgd)["entropy"][-1] != pytest.approx(toy.run("none", 1, sgd)["entropy"][-1], abs=1e-4)


def test_table_has_a_row_per_arm_and_rejects_unknown_arms(capsys):
    toy = load_script("docs/results/regime/shaping_toy.py")
    argv = ["--steps", "4", "--seeds", "2", "--contexts", "8", "--positions", "3", "--vocab", "4", "--batch", "4"]
    assert toy.main([*argv, "--arms", "none,full"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| arm", "| none", "| full"]
    assert "@4" in rows[0]
    with pytest.raises(SystemExit):
        toy.main([*argv, "--arms", "nope"])


def test_forked_task_is_near_deterministic_except_its_forks():
    toy = load_script("docs/results/regime/shaping_toy.py")
    gauss, answers = toy.make_task(0, 64, 6, 16)
    logits, forked_answers = toy.make_task(0, 64, 6, 16, forks=0.25)
    # the answer position and the answers do not change
    assert torch.equal(logits[:, -1], gauss[:, -1]) and torch.equal(answers, forked_answers)
    top2 = torch.softmax(logits[:, :-1], -1).topk(2, -1).values
    fork = top2[..., 1] > 0.02  # a second token of weight e^8 (elsewhere the second is below 1 % of the top)
    assert 0.15 < float(fork.float().mean()) < 0.35
    assert bool((top2[..., 0][~fork] > 0.9).all())  # one token takes almost all the mass elsewhere
    assert bool(((top2[..., 0] + top2[..., 1])[fork] > 0.9).all())  # two tokens share it at a fork
