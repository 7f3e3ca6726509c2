"""Planning a comparison: seeds, algorithms, variant parsing and errors, arms, equal-rollout run configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mssr.experiments.plan import (
    CompareError,
    Variant,
    parse_algorithms,
    parse_seeds,
    parse_variants,
    plan_arms,
    plan_compare,
    variant_algorithm,
)

REPO = Path(__file__).resolve().parents[2]
CPU = REPO / "configs" / "cpu"


def test_parse_seeds_lists_and_ranges():
    assert parse_seeds("0,1,2") == (0, 1, 2)
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("7, 0-2") == (7, 0, 1, 2)


@pytest.mark.parametrize("bad", ["", "a", "3-1", "0,0", "0-2,1", "1.5"])
def test_parse_seeds_errors(bad):
    with pytest.raises(CompareError, match="seeds"):
        parse_seeds(bad)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True))
def test_parse_seeds_roundtrip(seeds):
    assert parse_seeds(",".join(map(str, seeds))) == tuple(seeds)


def test_parse_algorithms():
    assert parse_algorithms("mssr, grpo") == ("mssr", "grpo")
    with pytest.raises(CompareError, match="unknown 'ppo'"):
        parse_algorithms("mssr,ppo")
    with pytest.raises(CompareError, match="twice"):
        parse_algorithms("mssr,mssr")


def test_parse_variants():
    vs = parse_variants(
        "mssr_full: algorithm.shaping.entropy=full ; equal_updates:optim.updates_per_step=1,optim.lr=3e-4;"
        "betas:optim.betas=[0.9,0.99],optim.eps=1e-6"
    )
    assert vs == (
        Variant("mssr_full", ("algorithm.shaping.entropy=full",)),
        Variant("equal_updates", ("optim.updates_per_step=1", "optim.lr=3e-4")),
        # a comma inside a value does not split the item; one before a new key=value does
        Variant("betas", ("optim.betas=[0.9,0.99]", "optim.eps=1e-6")),
    )
    assert parse_variants(None) == () and parse_variants("  ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mssr_full", "expected name:key=value"),
        ("bad name:optim.lr=1", "name 'bad name'"),
        (":optim.lr=1", "name ''"),
        ("x:", "no key=value"),
        ("x:optim.lr", "must look like key.path=value"),
        ("x:optim..lr=1", "not a dotted config key"),
        ("x:seed=3", "seed is set by mssr compare"),
        ("x:output_dir=/tmp/a", "output_dir is set by mssr compare"),
        ("x:rollout.rollouts_per_step=8", "equal rollouts per step"),
        ("x:optim.lr=1,optim.lr=2", "optim.lr is given twice"),
        ("x:optim.lr=1;x:optim.lr=2", "variant 'x' is defined twice"),
    ],
)
def test_parse_variants_errors(text, message):
    with pytest.raises(CompareError, match=message):
        parse_variants(text)


def test_variant_algorithm_inference():
    assert variant_algorithm(Variant("mssr_full", ("algorithm.shaping.entropy=full",))) == "mssr"
    assert variant_algorithm(Variant("mvsr-lr3e-4", ("optim.lr=3e-4",))) == "mvsr"
    # the longest algorithm prefix wins
    assert variant_algorithm(Variant("mvsr_entropy_loss_c05", ("x.y=1",))) == "mvsr_entropy_loss"
    assert variant_algorithm(Variant("fullshaping", ("algorithm.name=mssr",))) == "mssr"
    assert variant_algorithm(Variant("equal_updates", ("optim.updates_per_step=1",))) is None
    assert variant_algorithm(Variant("mssrx", ("optim.lr=1",))) is None  # no separator: not a prefix
    with pytest.raises(CompareError, match=r"unknown algorithm\.name 'ppo'"):
        variant_algorithm(Variant("v", ("algorithm.name=ppo",)))


def test_plan_arms_crossing_and_collisions():
    vs = parse_variants("mssr_full:algorithm.shaping.entropy=full;eq:optim.updates_per_step=1")
    arms = plan_arms(("mssr", "grpo"), (0, 1), vs, variant_seeds=(0,))
    assert [(a.name, a.algorithm, a.seeds) for a in arms] == [
        ("mssr", "mssr", (0, 1)),
        ("grpo", "grpo", (0, 1)),
        ("mssr_full", "mssr", (0,)),
        ("mssr+eq", "mssr", (0,)),
        ("grpo+eq", "grpo", (0,)),
    ]
    assert arms[2].overrides == ("algorithm.name=mssr", "algorithm.shaping.entropy=full")
    with pytest.raises(CompareError, match="arm 'grpo' is defined twice"):
        plan_arms(("mssr", "grpo"), (0,), parse_variants("grpo:algorithm.name=grpo,optim.lr=1e-3"))


def test_plan_compare_equal_rollouts_and_group_sizes(tmp_path):
    plan = plan_compare(
        base=str(CPU / "grpo.yaml"),  # its rollouts_per_prompt: 8 belongs to grpo only
        algorithms=("mssr", "grpo", "rloo"),
        seeds=(0, 1),
        variants=parse_variants("rloo_n4:algorithm.rollouts_per_prompt=4"),
        variant_seeds=(1,),
        out=tmp_path / "cmp",
    )
    cfgs = {r.id: plan.run_config(r) for r in plan.runs}
    # seed-major order: every arm's seed 0 before any seed 1
    assert [r.id for r in plan.runs] == [
        "mssr/seed0", "grpo/seed0", "rloo/seed0", "mssr/seed1", "grpo/seed1", "rloo/seed1", "rloo_n4/seed1",
    ]  # fmt: skip
    assert {c.rollout.rollouts_per_step for c in cfgs.values()} == {64}
    n = {rid: c.algorithm.spec().rollouts_per_prompt for rid, c in cfgs.items()}
    assert n["mssr/seed0"] == 1 and n["grpo/seed0"] == 8 and n["rloo/seed0"] == 8 and n["rloo_n4/seed1"] == 4
    assert cfgs["mssr/seed0"].prompts_per_step == 64 and cfgs["grpo/seed1"].prompts_per_step == 8
    assert cfgs["rloo_n4/seed1"].prompts_per_step == 16
    assert cfgs["grpo/seed1"].seed == 1
    assert Path(cfgs["mssr/seed1"].output_dir) == (tmp_path / "cmp" / "runs/mssr/seed1").resolve()
    assert cfgs["mssr/seed0"].checkpoint.resume == "auto"


def test_plan_compare_config_errors_name_the_culprit(tmp_path):
    with pytest.raises(CompareError, match=r"run mssr_x/seed0 \(variant 'mssr_x'\).*optim.nope"):
        plan_compare(
            base=None,
            algorithms=("mssr",),
            seeds=(0,),
            variants=parse_variants("mssr_x:optim.nope=1"),
            out=tmp_path,
        )
    with pytest.raises(CompareError, match="seed is set by mssr compare"):
        plan_compare(base=None, algorithms=("mssr",), seeds=(0,), overrides=("seed=1",), out=tmp_path)
    with pytest.raises(CompareError, match="does not exist"):
        plan_compare(base=str(tmp_path / "nope.yaml"), algorithms=("mssr",), seeds=(0,), out=tmp_path)
    # a shared group size of 1 makes grpo invalid: the error names the algorithm's run
    with pytest.raises(CompareError, match=r"run grpo/seed0 \(algorithm 'grpo'\).*rollouts_per_prompt"):
        plan_compare(
            base=None,
            algorithms=("grpo",),
            seeds=(0,),
            overrides=("algorithm.rollouts_per_prompt=1",),
            out=tmp_path,
        )


def test_default_out_depends_on_the_shared_base_only():
    a = plan_compare(base=str(CPU / "mssr.yaml"), algorithms=("mssr",), seeds=(0,), overrides=("steps=5",))
    b = plan_compare(base=str(CPU / "mssr.yaml"), algorithms=("grpo",), seeds=(3,), overrides=("steps=5",))
    c = plan_compare(base=str(CPU / "mssr.yaml"), algorithms=("mssr",), seeds=(0,), overrides=("steps=6",))
    assert a.out == b.out != c.out
    assert a.out.name.startswith("compare-mssr-")
