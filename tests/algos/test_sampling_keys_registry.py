"""Prompt sampler (defect 4), prompt keys, registries, presets."""

import pytest
import torch

from mssr.algos import ALGORITHMS, PromptSampler, Registry, prompt_key, spo_priority_weights


def test_spo_weights_golden():
    assert spo_priority_weights(torch.tensor([0.0, 0.5, 1.0, 0.1])).tolist() == pytest.approx(
        [0.05, 0.55, 0.05, 0.3 + 0.05]
    )


def test_prioritized_sampling_follows_the_weights():
    """Defect 4: the reference computed these weights and never used them."""
    w = spo_priority_weights(torch.tensor([0.0, 0.5, 1.0]))
    s = PromptSampler(3, seed=0, mode="prioritized")
    draws = [s.sample(1, w)[0] for _ in range(4000)]
    freq = draws.count(1) / len(draws)
    assert freq == pytest.approx(0.55 / 0.65, abs=0.03)  # uniform would give 1/3
    batch = s.sample(3, w)
    assert sorted(batch) == [0, 1, 2]  # without replacement within a batch


def test_uniform_sampler_covers_epochs_and_resumes_exactly():
    s = PromptSampler(10, seed=3)
    first = s.sample(6) + s.sample(4)
    assert sorted(first) == list(range(10)) and s.epoch == 1
    s.sample(7)
    state = s.state_dict()
    cont = [s.sample(5) for _ in range(3)]
    r = PromptSampler(10, seed=999)
    r.load_state_dict(state)
    assert [r.sample(5) for _ in range(3)] == cont
    with pytest.raises(ValueError, match="10 prompts, this dataset has 11"):
        PromptSampler(11).load_state_dict(state)


def test_prompt_keys():
    a, b = b"\x00\x01image-a", b"\x00\x01image-b"
    assert prompt_key("What?", [a]) == prompt_key("What?", [a])
    assert prompt_key("What?", [a]) != prompt_key("What?", [b])  # same text, different image
    assert prompt_key("What?", [a, b]) != prompt_key("What?", [b, a])
    assert prompt_key("What?", [a]) != prompt_key("What!", [a])
    assert prompt_key("ignored", [a], dataset_id=17) == "id:17"
    assert prompt_key("x", dataset_id="q1", namespace="train") == "id:train/q1"
    with pytest.raises(TypeError, match="bytes"):
        prompt_key("x", ["not-bytes"])


def test_registry_rejects_duplicates_and_lists_known():
    reg: Registry = Registry("widget")
    reg.register("a", 1)

    @reg.register("b")
    def _b():
        return 2

    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 3)
    with pytest.raises(KeyError, match="known: a, b"):
        reg.get("c")
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2


def test_presets_follow_the_method_doc():
    mssr, mvsr, grpo = ALGORITHMS.get("mssr"), ALGORITHMS.get("mvsr"), ALGORITHMS.get("grpo")
    assert mssr.shaping and not mvsr.shaping and mssr.use_tracker and mvsr.use_tracker
    assert mssr.rollouts_per_prompt == 1 and grpo.rollouts_per_prompt == 8
    assert mssr.grad_clip == 0.5 and grpo.grad_clip == 1.0 and mssr.kl_coef == 0.01
    cm = ALGORITHMS.get("mvsr_crossmodal")
    assert cm.kl_coef == 0.0 and cm.crossmodal_coef == 0.01
    assert ALGORITHMS.get("mvsr_entropy_loss").entropy_coef == 0.01
    assert set(ALGORITHMS.names()) == {
        "mssr",
        "mvsr",
        "grpo",
        "rloo",
        "reinforce_pp",
        "mvsr_entropy_loss",
        "mvsr_crossmodal",
    }
