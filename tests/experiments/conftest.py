"""Fixtures for the comparison tests: a tiny random policy, a tiny dataset, a fast shared config, and a fake
trainer command that follows the real trainer's run-directory protocol without any model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TEST_REWARD = f"{HERE / 'plugin_rewards.py'}:length_parity"
FAKE_TRAINER = HERE / "fake_trainer.py"
ROOT = HERE.parents[1]


def load_script(relative: str):
    """A script of the repository (e.g. under docs/results/) imported as a module, for testing its functions."""
    import importlib.util

    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def fast_overrides(tiny_policy_dir, tiny_data_dir) -> tuple[str, ...]:
    """Shared overrides for a real but fast run: 8 rollouts/step, 8 new tokens, validation every step."""
    return (
        f"model.path={tiny_policy_dir}",
        f"data.train={tiny_data_dir}",
        f"reward.spec={TEST_REWARD}",
        "steps=2",
        "device=cpu",
        "rollout.rollouts_per_step=8",
        "rollout.max_new_tokens=8",
        "rollout.gen_batch_size=8",
        "optim.mini_batch_prompts=4",
        "optim.micro_batch_size=8",
        "optim.lr=1e-3",
        "val.every=1",
        "val.batch_size=4",
        "checkpoint.every=1",
        "logging.tensorboard=false",
    )


@pytest.fixture
def fake_command():
    """The runner's ``command``: launch the fake trainer on a run's ``run.yaml``."""

    def _command(run_yaml: Path) -> list[str]:
        return [sys.executable, str(FAKE_TRAINER), str(run_yaml)]

    return _command


@pytest.fixture(autouse=True)
def _skip_slow_unless_selected(request):
    """Tests marked ``slow`` run only when selected (``pytest -m slow``); the default suite skips them."""
    if request.node.get_closest_marker("slow") and "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("slow: run with -m slow")
