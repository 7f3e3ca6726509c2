"""Where the old log-probs come from (``rollout.old_logprobs``) and truncated importance sampling
(``rollout.tis_cap``), checked in the trainer against a sampler whose log-probs are off by a known constant."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mssr.config import ConfigError
from mssr.trainer.trainer import RLTrainer

OFFSET = 0.5  # the fake sampler reports log-probs 0.5 below the true ones: log(π_trainer / π_sampler) = 0.5


def _one_step(make_config, out, *overrides: str) -> dict:
    """Step 1 with one optimizer update (mini-batch = all 8 rows, so the PPO ratio is 1 when the old log-probs
    are the trainer's) and a sampler whose log-probs are shifted down by OFFSET on every response token."""
    trainer = RLTrainer(make_config("steps=1", "optim.mini_batch_prompts=8", *overrides, out=out))
    generate = trainer.engine.generate

    def shifted(*args, **kwargs):
        batch = generate(*args, **kwargs)
        lp = batch.rollout_logprobs
        return batch if lp is None else batch.replace(rollout_logprobs=lp - OFFSET * batch.response_mask)

    trainer.engine.generate = shifted
    trainer.train()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return next(r for r in rows if r["step"] == 1)


def test_old_logprobs_from_the_sampler_enter_the_ratio(make_config, tmp_path):
    row = _one_step(make_config, tmp_path / "s", "rollout.old_logprobs=sampler")
    # ppo_kl = mean(ℓ_old − ℓ_θ) at the first update = −OFFSET: the ratio was taken against the sampler
    assert row["actor/ppo_kl"] == pytest.approx(-OFFSET, abs=1e-4)
    assert "rollout/tis_weight_mean" not in row


def test_truncated_importance_weights_scale_the_policy_term(make_config, tmp_path):
    plain = _one_step(make_config, tmp_path / "plain", "rollout.old_logprobs=trainer")
    tis = _one_step(make_config, tmp_path / "tis", "rollout.tis_cap=2")
    capped = _one_step(make_config, tmp_path / "cap", "rollout.tis_cap=1.2")
    assert plain["actor/ppo_kl"] == pytest.approx(0.0, abs=1e-5)  # trainer's old log-probs: ratio 1
    assert "rollout/tis_weight_mean" not in plain
    assert abs(plain["actor/pg_loss"]) > 1e-3
    w = math.exp(OFFSET)  # 1.6487 < cap 2: kept
    assert tis["rollout/logprob_diff_mean"] == pytest.approx(OFFSET, abs=1e-4)
    assert tis["rollout/tis_weight_mean"] == pytest.approx(w, rel=1e-4)
    assert tis["rollout/tis_capped_frac"] == 0.0
    assert tis["actor/pg_loss"] == pytest.approx(w * plain["actor/pg_loss"], rel=1e-3)
    assert capped["rollout/tis_weight_max"] == pytest.approx(1.2, rel=1e-6)
    assert capped["rollout/tis_capped_frac"] == 1.0
    assert capped["actor/pg_loss"] == pytest.approx(1.2 * plain["actor/pg_loss"], rel=1e-3)


def test_tis_with_sampler_old_logprobs_is_refused(make_config):
    with pytest.raises(ConfigError, match="tis_cap"):
        make_config("rollout.old_logprobs=sampler", "rollout.tis_cap=2").validate()


def test_the_deprecated_switch_maps_to_old_logprobs(make_config):
    with pytest.warns(DeprecationWarning, match="old_logprobs=trainer"):
        cfg = make_config("rollout.reuse_sampler_logprobs=false")
    assert cfg.rollout.old_logprobs == "trainer"


def test_vllm_sleep_is_refused_where_it_cannot_work(make_config):
    with pytest.raises(ConfigError, match=r"option of rollout\.engine=vllm"):
        make_config("rollout.vllm.sleep_level=1").validate()  # the built-in engine shares the policy's memory
    with pytest.raises(ConfigError, match="0, 1 or 2"):
        make_config("rollout.engine=vllm", "rollout.vllm.sleep_level=3").validate()
    if not torch.cuda.is_available():  # refused before vLLM is imported or started
        with pytest.raises(ConfigError, match="needs a GPU"):
            RLTrainer(make_config("rollout.engine=vllm", "rollout.vllm.sleep_level=1"))


@pytest.mark.parametrize(
    "overrides,source,requested",
    [
        ((), "sampler", True),  # auto, built-in engine in float32: the sampler's are the training forward's
        (("rollout.old_logprobs=trainer",), "trainer", False),
        (("rollout.tis_cap=2",), "trainer", True),  # weights need both: the trainer's pass and the sampler's
        (("rollout.old_logprobs=sampler",), "sampler", True),
    ],
)
def test_the_old_logprob_source_is_resolved_once_at_setup(
    make_config, tmp_path, overrides, source, requested
):
    trainer = RLTrainer(make_config("steps=0", *overrides, out=tmp_path / "r"))
    assert trainer.old_logprobs_from == source and trainer.want_sampler_logprobs is requested
    trainer.close()
