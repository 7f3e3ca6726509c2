"""``mssr eval`` on the built-in val split reports exactly what ``RLTrainer.validate`` reports for the same
policy and split: same prompts, greedy decoding, same reward — one code path (``evaluate``)."""

from __future__ import annotations

import argparse

import pytest

from mssr.config import load_config
from mssr.data import load_records
from mssr.evaluation import ResultStore, evaluate_policy
from mssr.trainer.config import TrainConfig
from mssr.trainer.trainer import RLTrainer

from .helpers import PARITY_REWARD


def _args(**kw) -> argparse.Namespace:
    from mssr.cli import eval as cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(["--model", "x", *[a for k, v in kw.items() for a in (f"--{k}", str(v))]])


@pytest.mark.parametrize("reward", ["accuracy", PARITY_REWARD])
def test_eval_equals_trainer_validation(tiny_policy, builtin_dir, tmp_path, reward):
    from mssr.cli.eval import load_benchmarks

    cfg = load_config(
        TrainConfig,
        None,
        [
            f"data.train={builtin_dir}",
            f"output_dir={tmp_path / 'run'}",
            f"reward.spec={reward}",
            "device=cpu",
            "rollout.max_new_tokens=12",
            "val.batch_size=4",
            "val.greedy=true",  # the paper protocol; mssr eval is greedy by default
            "logging.progress=false",
            "logging.tensorboard=false",
            "logging.plot=false",
        ],
    )
    val = list(load_records(builtin_dir, "val"))
    trainer = RLTrainer(cfg, policy=tiny_policy, val_records=val)
    logged = trainer.validate()

    # the CLI's path: settings derived from the same training config, the builtin adapter on the same split
    runs = load_benchmarks(_args(split="val"), cfg, ["builtin"])
    assert runs[0].settings.max_new_tokens == 12 and runs[0].settings.reward == reward
    out = tmp_path / "eval"
    summary = evaluate_policy(tiny_policy, runs, out, label="tiny", model="tiny", progress=None)
    b = summary.benchmarks["builtin"]
    assert b.n_done == len(val) == logged["val/n"]
    assert b.accuracy == pytest.approx(logged["val/accuracy"], abs=0)
    if reward != "accuracy":
        assert 0 < b.accuracy < 1  # the parity reward makes the comparison non-trivial

    # and response by response: the trainer's evaluator on its prompts gives the same texts and verdicts
    from mssr.evaluation import evaluate

    res = evaluate(
        trainer.engine,
        trainer.val_prompts,
        trainer.val_records,
        reward=trainer.reward,
        max_new_tokens=cfg.rollout.max_new_tokens,
        batch_size=cfg.val.batch_size,
    )
    rows = ResultStore(out / "results" / "builtin.jsonl").load()
    assert [rows[r.id]["samples"][0]["response"] for r in val] == res.responses
    assert [rows[r.id]["samples"][0]["correct"] for r in val] == res.correct
    assert len(set(res.responses)) > 1  # the responses differ from prompt to prompt


def test_builtin_without_a_pinned_dataset_reads_the_split_training_validates_on(tmp_path):
    """A training config with no data.train pinned (``--model base``, a policy without its run's config): the
    builtin benchmark is the RL task's val split in the directory training generates and pins — not the SFT
    base's own items (seed 1), as it was before."""
    from mssr.cli.eval import builtin_location
    from mssr.trainer.setup import build_data

    small = ["data.builtin.n_train=6", "data.builtin.n_val=4", "data.builtin.n_test=2"]
    tc = load_config(TrainConfig, None, [f"data.cache_dir={tmp_path}", *small])
    root, split = builtin_location(tc, None)
    trained = load_config(TrainConfig, None, [f"data.cache_dir={tmp_path}", *small])
    _, val = build_data(trained)
    assert trained.data.train == str(root) and split == "val"  # the directory training pins
    assert [(r.id, r.question, r.answer) for r in load_records(root, "val")] == [
        (r.id, r.question, r.answer) for r in val
    ]
    assert sorted(p.name for p in tmp_path.rglob("builtin-*") if p.is_dir()) == [
        root.name
    ]  # nothing else made
