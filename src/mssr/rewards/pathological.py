"""Responses a degenerate policy (or a hostile file) produces, for testing that grading stays bounded: each kind
at a given size. Used by tests/rewards/test_pathological.py and bench/pathological_grading.py."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# name -> (builder of a response of about n characters, the gold answer, whether the response states it)
KINDS: Mapping[str, tuple] = MappingProxyType(
    {
        "newlines_after_box": (lambda n: "\\boxed{5}" + "\n" * n, "5", True),
        "open_answer_tags": (lambda n: "<answer>" * (n // 8), "5", False),
        "answer_phrases": (lambda n: "The answer is 5. " * (n // 17), "5", True),
        "open_boxes": (lambda n: "\\boxed{" * (n // 7), "5", False),
        "bold_markers": (lambda n: "**" * (n // 2), "5", False),
        "digits": (lambda n: "1" * n, "5", False),
        "spaces_then_box": (lambda n: " " * n + "\\boxed{5}", "5", True),
        "prompt_lines": (lambda n: "Question:\n\n\n" * (n // 12) + "\\boxed{5}", "5", True),
        "dollar_phrases": (lambda n: "answer is $" * (n // 11), "5", False),
    }
)


def pathological_responses(
    sizes: tuple[int, ...] = (1_000, 100_000, 10_000_000),
) -> list[tuple[str, str, str, bool]]:
    """``(name, response, gold, states_gold)`` for every kind at every size."""
    out = []
    for size in sizes:
        for name, (build, gold, states) in KINDS.items():
            out.append((f"{name}@{size}", build(size), gold, states))
    return out
