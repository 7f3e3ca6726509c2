"""The trainer talks to its rollout engine through the RolloutEngine protocol only: a stand-in engine with its
own weights that sleeps gets before_update after generation and after_update (with the updated model) after each
update; the built-in engine gets neither. No getattr probe of the engine is left in the trainer."""

from __future__ import annotations

import re
from pathlib import Path

from mssr.rollout import HFRolloutEngine, RolloutEngine
from mssr.trainer.trainer import RLTrainer

ROOT = Path(__file__).resolve().parents[2]


class RecordingEngine(HFRolloutEngine):
    """The built-in sampler, declared as an engine with its own copy of the weights that sleeps."""

    shares_weights = False
    sleeps = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def generate(self, *args, **kwargs):
        self.calls.append("generate")
        return super().generate(*args, **kwargs)

    def before_update(self) -> None:
        self.calls.append("before_update")

    def after_update(self, model) -> float:
        self.calls.append("after_update")
        assert model is not None
        return 0.0

    def sync(self, model) -> float:
        self.calls.append("sync")
        return 0.0


def test_the_trainer_follows_the_update_protocol(make_config, tmp_path):
    trainer = RLTrainer(make_config("steps=2", "algorithm.tracker.init=none", out=tmp_path / "r"))
    engine = RecordingEngine(trainer.model, trainer.policy.processor, suppress_token_ids=trainer.suppress)
    trainer.engine = engine
    trainer.train()
    steps = "".join("G" if c == "generate" else c[0] for c in engine.calls)
    # per step: generate (once per generation chunk), before_update, after_update
    assert re.fullmatch(r"(G+ba){2}G*", steps), engine.calls  # then the final validation generates


def test_both_engines_declare_the_protocol_and_the_trainer_never_probes():
    from mssr.rollout.vllm_engine import VLLMRolloutEngine

    for cls in (HFRolloutEngine, VLLMRolloutEngine):
        for name in ("generate", "sync", "before_update", "after_update", "close"):
            assert callable(getattr(cls, name)), (cls, name)
        assert isinstance(cls.shares_weights, bool)
    assert HFRolloutEngine.shares_weights and not VLLMRolloutEngine.shares_weights
    assert {"shares_weights", "sleeps"} <= set(RolloutEngine.__annotations__)
    for path in [ROOT / "src/mssr/trainer/trainer.py", *(ROOT / "src/mssr/trainer/stages").glob("*.py")]:
        source = path.read_text() + (ROOT / "src/mssr/trainer/step.py").read_text()
        assert not re.search(r"(getattr|hasattr)\([^)]*engine", source), path
        assert "sleep_level" not in source and "isinstance" not in source, path  # no question what it is
