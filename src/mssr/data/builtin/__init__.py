"""The built-in multimodal task: procedurally drawn images with questions that need the image and a few
steps of reasoning (counting, arithmetic, bar charts, triangle angles). See ``docs/data.md``."""

from .family import DIFFICULTIES, Family
from .generate import (
    DEFAULTS,
    GENERATOR_VERSION,
    SPLITS,
    answer_vocabulary,
    config_key,
    content_hash,
    corpus_texts,
    difficulty_weights,
    ensure_dataset,
    generate_dataset,
    iter_items,
    summarize,
)
from .items import FAMILIES, Item, format_solution, make_item

__all__ = [
    "DEFAULTS",
    "DIFFICULTIES",
    "FAMILIES",
    "GENERATOR_VERSION",
    "SPLITS",
    "Family",
    "Item",
    "answer_vocabulary",
    "config_key",
    "content_hash",
    "corpus_texts",
    "difficulty_weights",
    "ensure_dataset",
    "format_solution",
    "generate_dataset",
    "iter_items",
    "make_item",
    "summarize",
]
