"""docs/config.md is generated from TrainConfig's fields and their own documentation: it must match the fields
(regenerate it with ``python -m mssr.trainer.config_reference > docs/config.md``), and every field is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mssr.trainer.config import AlgorithmConfig, TrainConfig
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
    # the comment block above a field, then its own line comment
    assert docs["shaping_alpha"].startswith("§4 shaping: ψ_t = min(")
    assert docs["shaping_alpha"].endswith("entropy weight of the shaping bonus, >= 0")
    assert docs["kl_coef"] == "weight β_KL of the KL-to-reference *loss* term (§5), >= 0; 0.01 (0: off)"
