"""docs/config.md is generated from TrainConfig's fields and their own documentation: it must match the fields
(regenerate it with ``python -m mssr.trainer.config_reference > docs/config.md``), and every field is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mssr.trainer.config import AlgorithmConfig, DataConfig, RhoConfig, TrainConfig
from mssr.trainer.config_reference import field_docs, reference, sections

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_the_reference_matches_the_fields():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/config.md is out of date: python -m mssr.trainer.config_reference > docs/config.md"
    )


def test_every_field_has_a_row_with_its_documentation():
    def leaves(obj, prefix=""):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from leaves(value, f"{prefix}{f.name}.")
            else:
                yield prefix + f.name

    rows = {key: doc for _, _, rs in sections() for key, _, _, doc in rs}
    assert sorted(rows) == sorted(leaves(TrainConfig()))
    undocumented = [k for k, doc in rows.items() if not doc]
    assert not undocumented, f"fields without a comment in src/mssr/trainer/config.py: {undocumented}"


def test_field_docs_reads_own_and_shared_comments():
    docs = field_docs(AlgorithmConfig)
    assert docs["kl_coef"] == "weight β_KL of the KL-to-reference *loss* term (§5), >= 0; 0.01 (0: off)"
    # the comment block above a field, then its own line comment
    assert docs["rollouts_per_prompt"] == (
        "the algorithm's own settings (null: the ALGORITHMS entry's value, filled in when the config is loaded) — n, rollouts per prompt: 1 "
        "single-rollout, 8 grpo/rloo"
    )
    # fields written one after another under one comment block share it
    data = field_docs(DataConfig)
    assert data["answer_key"] == data["prompt_key"] and data["answer_key"].startswith("the columns holding")
    assert field_docs(RhoConfig)["kl_target"].startswith("kl_window: ρ falls to min")
