"""Beta tracker (docs/method.md §1), ρ schedules (§2), and the reference-code defects 1, 2 and 5."""

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.algos import BetaTracker, ResponseStore, build_rho_schedule, policy_drift, spo_rho


def test_initialisations_golden():
    t = BetaTracker()
    assert t.n0 == 8.0
    t.init_from_outcomes({"a": [1, 0, 1, 1]})
    assert t.params("a") == (6.0, 2.0)
    t.init_spo({"b": 3}, n0=8)
    assert t.params("b") == pytest.approx((8 * 3.5 / 9, 8 * 5.5 / 9))
    assert t.params("never-seen") == (4.0, 4.0)
    assert t.baseline(["a", "b", "never-seen"]).tolist() == pytest.approx([0.75, 3.5 / 9, 0.5])


def test_update_uses_binarised_reward_and_is_sequential():
    t = BetaTracker()
    t.init_from_outcomes({"a": [1, 0, 1, 1]})  # (6, 2)
    t.update(["a"], [0.9], 0.9)  # b = 1
    assert t.params("a") == pytest.approx((6.4, 1.8))
    # same key twice in one batch: two updates in order
    t.update(["a", "a"], [0.0, 1.0], [0.5, 0.5])
    a1, b1 = 0.5 * 6.4, 0.5 * 1.8 + 1
    assert t.params("a") == pytest.approx((0.5 * a1 + 1, 0.5 * b1))
    # None / NaN rewards are excluded
    before = t.params("a")
    t.update(["a", "a"], [None, float("nan")], 0.9)
    assert t.params("a") == before


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=30), st.floats(0.5, 1.0), st.floats(0, 8))
def test_update_matches_closed_form_with_constant_rho(outcomes, rho, a0):
    t = BetaTracker()
    t._alpha["k"], t._beta["k"] = a0, 8.0 - a0
    for r in outcomes:
        t.update(["k"], [r], rho)
    k = len(outcomes)
    alpha = rho**k * a0 + sum(rho ** (k - 1 - j) * b for j, b in enumerate(outcomes))
    beta = rho**k * (8.0 - a0) + sum(rho ** (k - 1 - j) * (1 - b) for j, b in enumerate(outcomes))
    assert t.params("k") == pytest.approx((alpha, beta), rel=1e-9, abs=1e-12)


def test_state_round_trips_exactly_through_torch_save():
    """Defect 1: the reference lost the tracker on resume (every prompt back to v̂ = 0.5)."""
    t = BetaTracker()
    t.init_from_outcomes({f"p{i}": [i % 2, 1, 0] for i in range(50)})
    t.update([f"p{i}" for i in range(50)], [float(i % 3 == 0) for i in range(50)], 0.93)
    buf = io.BytesIO()
    torch.save(t.state_dict(), buf)
    buf.seek(0)
    fresh = BetaTracker()
    fresh.load_state_dict(torch.load(buf))
    keys = [f"p{i}" for i in range(50)]
    assert torch.equal(fresh.baseline(keys), t.baseline(keys))
    assert all(fresh.params(k) == t.params(k) for k in keys)
    assert not torch.allclose(fresh.baseline(keys), torch.full((50,), 0.5))
    assert fresh.metrics() == t.metrics()


def test_tracker_metrics():
    t = BetaTracker()
    t.init_from_outcomes({"a": [1], "b": [0, 1]})
    m = t.metrics()
    assert m["p_hat_mean"] == pytest.approx(0.75) and m["neff"] == pytest.approx(8.0) and m["n_tracked"] == 2


def test_kl_window_rho_golden():
    s = build_rho_schedule("kl_window", window=3, target=0.01)
    got = [
        float(s(2, kl=torch.tensor([k, k], dtype=torch.float64))[0]) for k in (0.002, 0.004, 0.02, 0.0, 0.05)
    ]
    expect = [
        0.875 + 0.2 * 0.085,
        0.875 + 0.3 * 0.085,
        0.875 + (0.026 / 3 / 0.01) * 0.085,
        0.875 + 0.8 * 0.085,
        0.875,
    ]
    assert got == pytest.approx(expect, abs=1e-12)


def test_kl_window_size_is_honoured():
    """Defect 2: the reference hard-coded a window of 10 whatever was configured."""
    kls = [0.002, 0.004, 0.02, 0.0]
    w3, w10 = build_rho_schedule("kl_window", window=3), build_rho_schedule("kl_window", window=10)
    r3 = [float(w3(1, kl=k)[0]) for k in kls]
    r10 = [float(w10(1, kl=k)[0]) for k in kls]
    assert r3[-1] == pytest.approx(0.875 + 0.8 * 0.085)
    assert r10[-1] == pytest.approx(0.875 + 0.65 * 0.085)
    state = w3.state_dict()
    again = build_rho_schedule("kl_window", window=99)
    again.load_state_dict(state)
    assert float(again(1, kl=0.05)[0]) == float(w3(1, kl=0.05)[0])


def test_spo_rho_golden():
    d = torch.tensor([0.0, 0.06, 0.003, 0.005])
    assert spo_rho(d).tolist() == pytest.approx([0.96, 0.875, 0.96, 2 ** (-1 / 12)], abs=1e-6)
    fixed = build_rho_schedule("fixed")
    assert fixed(3).tolist() == pytest.approx([0.9175] * 3)


def test_per_prompt_rho_uses_the_same_response_rescored():
    """Defect 5: the reference compared log-probs of two different responses token by token.

    With an unchanged policy, re-scoring the stored response gives D = 0 (ρ = ρ_max), whatever the new
    response is; the reference's comparison of old vs new response gives a spurious drift."""
    store = ResponseStore()
    old_ids, old_lp = torch.tensor([5, 6, 7]), torch.tensor([-0.1, -2.0, -0.5])
    store.put("x", old_ids, old_lp)
    _ids, then = store.get("x")
    rescored_now = then.clone()  # policy unchanged -> same log-probs for the same tokens
    d = policy_drift(then, rescored_now)
    assert d == 0.0
    sched = build_rho_schedule("per_prompt")
    assert float(sched(1, divergence=torch.tensor([d]))[0]) == pytest.approx(0.96)
    new_response_lp = torch.tensor([-1.0, -0.2, -3.0])  # a different sampled response
    assert policy_drift(then, new_response_lp) > 0.5  # what the reference would have used
    with pytest.raises(ValueError, match="SAME response"):
        policy_drift(then, torch.tensor([-1.0, -0.2]))
    # first visit (NaN) -> D = 0
    assert float(sched(1, divergence=torch.tensor([float("nan")]))[0]) == pytest.approx(0.96)
    # ResponseStore round trip
    s2 = ResponseStore()
    s2.load_state_dict(store.state_dict())
    assert torch.equal(s2.get("x")[0], old_ids) and torch.equal(s2.get("x")[1], old_lp.double())


def test_rho_schedule_errors():
    with pytest.raises(KeyError, match="kl_window"):
        build_rho_schedule("sometimes")
    with pytest.raises(ValueError, match="window"):
        build_rho_schedule("kl_window", window=0)
    with pytest.raises(ValueError, match="needs"):
        build_rho_schedule("kl_window")(2)
