"""Cross-checks against verl's ``core_algos`` on identical random tensors (a numeric oracle).

verl is not a dependency: `.ci/run` installs it with ``--no-deps`` into ``.peers/verl`` (or set
``MSSR_VERL_PATH``); verl's package import wants ``ray``, replaced here by a stub when ray is absent.
Convention differences (documented in docs/algorithms.md):
- GRPO: same (ddof=1, eps=1e-6 added to std). verl gives singleton groups mean 0/std 1; we refuse them by
  default and match verl with ``allow_singleton=True``.
- REINFORCE++: verl whitens discounted token returns (γ=1 here) with Bessel-corrected variance, eps 1e-8: same.
- ``seq-mean-token-sum-norm``: verl ≥ 0.9 divides by (#sequences × horizon): same.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch

from mssr.algos import agg_loss, compute_advantages, entropy_from_logits, kl_penalty, policy_loss

pytestmark = pytest.mark.peer
ROOT = Path(__file__).resolve().parents[2]


def _import_verl():
    path = os.environ.get("MSSR_VERL_PATH", str(ROOT / ".peers" / "verl"))
    if not Path(path, "verl").is_dir():
        pytest.skip(f"verl not installed at {path} (CI installs it with --no-deps; see .ci/run)")
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import ray  # noqa: F401
    except ImportError:
        stub = types.ModuleType("ray")
        stub.ObjectRef = type("ObjectRef", (), {})
        stub.remote = lambda *a, **k: a[0] if a and callable(a[0]) else (lambda f: f)
        stub.get = lambda x, *a, **k: x
        stub.put = lambda x, *a, **k: x
        stub.is_initialized = lambda: False
        sys.modules["ray"] = stub
    try:
        from verl.trainer.ppo import core_algos
        from verl.utils import torch_functional
    except Exception as exc:  # a peer that cannot import on this machine is a skip, not a failure
        pytest.skip(f"verl core_algos not importable: {type(exc).__name__}: {exc}")
    return core_algos, torch_functional


@pytest.fixture(scope="module")
def verl():
    return _import_verl()


def _batch(seed=0, b=12, t=7, groups=4):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, t)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        mask[i, n:] = 0
    rewards = torch.randint(0, 2, (b,), generator=g).float()
    token_rewards = torch.zeros(b, t)
    token_rewards[torch.arange(b), lengths - 1] = rewards  # outcome reward on the last valid token
    uid = torch.arange(b) % groups
    return rewards, token_rewards, mask, uid, g


@pytest.mark.parametrize("norm", [True, False])
def test_grpo_matches_verl(verl, norm):
    import numpy as np

    ca, _ = verl
    for seed in range(5):
        r, tr, mask, uid, _ = _batch(seed)
        theirs, _ = ca.compute_grpo_outcome_advantage(
            tr, mask, np.array([f"u{u}" for u in uid.tolist()]), 1e-6, norm
        )
        ours = compute_advantages("grpo", r, mask, group_ids=uid, scale_by_std=norm).advantages
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_rloo_matches_verl(verl):
    import numpy as np

    ca, _ = verl
    for seed in range(5):
        r, tr, mask, uid, _ = _batch(seed)
        theirs, _ = ca.compute_rloo_outcome_advantage(tr, mask, np.array(uid.tolist()))
        ours = compute_advantages("rloo", r, mask, group_ids=uid).advantages
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_reinforce_pp_matches_verl(verl):
    ca, _ = verl
    for seed in range(5):
        r, tr, mask, _, _ = _batch(seed)
        theirs, _ = ca.compute_reinforce_plus_plus_outcome_advantage(
            tr, mask, config=types.SimpleNamespace(gamma=1.0)
        )
        ours = compute_advantages("reinforce_pp", r, mask).advantages
        assert torch.allclose(ours, theirs, atol=1e-5)


class _ActorCfg(dict):
    """The attributes verl's vanilla policy loss reads from its ActorConfig."""

    def __init__(self, low, high, c):
        super().__init__(clip_ratio_c=c)
        self.clip_ratio, self.clip_ratio_low, self.clip_ratio_high = low, low, high
        self.global_batch_info = {}


@pytest.mark.parametrize(
    "mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
)
def test_policy_loss_and_agg_match_verl(verl, mode):
    ca, _ = verl
    for seed in range(3):
        _, _, mask, _, g = _batch(seed)
        old = -torch.rand(mask.shape, generator=g) * 3
        new = old + torch.randn(mask.shape, generator=g) * 0.4
        adv = torch.randn(mask.shape, generator=g)
        theirs, tm = ca.compute_policy_loss_vanilla(old, new, adv, mask, mode, _ActorCfg(0.2, 0.3, 3.0))
        ours = policy_loss("ppo_clip", new, old, adv, mask, agg_mode=mode)
        assert ours.loss.item() == pytest.approx(theirs.item(), abs=1e-6)
        assert ours.metrics["pg_clipfrac"] == pytest.approx(tm["actor/pg_clipfrac"], abs=1e-6)
        assert ours.metrics["pg_clipfrac_lower"] == pytest.approx(tm["actor/pg_clipfrac_lower"], abs=1e-6)
        assert ours.metrics["ppo_kl"] == pytest.approx(tm["actor/ppo_kl"], abs=1e-6)
        loss_mat = torch.randn(mask.shape, generator=g)
        assert agg_loss(loss_mat, mask, mode).item() == pytest.approx(
            ca.agg_loss(loss_mat, mask, mode).item(), abs=1e-6
        )


@pytest.mark.parametrize("ours_name,theirs_name", [("k1", "kl"), ("k2", "mse"), ("k3", "low_var_kl")])
def test_kl_estimators_match_verl(verl, ours_name, theirs_name):
    ca, _ = verl
    g = torch.Generator().manual_seed(1)
    lp, ref = -torch.rand(6, 9, generator=g) * 30, -torch.rand(6, 9, generator=g) * 30  # exercises the clamps
    assert torch.allclose(kl_penalty(lp, ref, ours_name), ca.kl_penalty_forward(lp, ref, theirs_name))


def test_full_entropy_matches_verl(verl):
    _, tf = verl
    logits = torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(2)) * 4
    assert torch.allclose(
        entropy_from_logits(logits, chunk_size=4), tf.entropy_from_logits(logits), atol=1e-5
    )
