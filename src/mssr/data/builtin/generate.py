"""Write the built-in task's train/val/test splits, cache them by config, and stream texts for tokenizers.

Seeds: item ``i`` of split ``s`` draws from ``random.Random("mssr-builtin:{seed}:{s}:{i}:{attempt}")``, so the
splits use disjoint seed streams and an item does not depend on how many items come before it. Splits are
built test -> val -> train; an item whose (image bytes, question) hash was already produced (in any split)
is redrawn with the next ``attempt``, so the splits share no (image, question) pair and growing ``n_train``
never changes val/test.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mssr.io import write_dir_atomic, write_jsonl_atomic

from .family import DIFFICULTIES
from .items import FAMILIES, Item, make_item

GENERATOR_VERSION = 3  # bump when a change alters generated items; part of the cache key
SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULTS: dict[str, Any] = {
    "n_train": 2000,
    "n_val": 200,
    "n_test": 200,
    "seed": 0,
    "image_size": 64,
    "families": None,
    "difficulty": "easy",
    "mc_fraction": 0.25,
}
MAX_ATTEMPTS = 50

Difficulty = str | Mapping[str, float]


def difficulty_weights(difficulty: Difficulty) -> dict[str, float]:
    """``"easy"``/``"medium"``/``"hard"``, ``"mixed"`` (equal thirds), or a mapping of weights."""
    if isinstance(difficulty, str):
        if difficulty == "mixed":
            return dict.fromkeys(DIFFICULTIES, 1.0)
        if difficulty in DIFFICULTIES:
            return {difficulty: 1.0}
        raise ValueError(
            f"difficulty must be one of {(*DIFFICULTIES, 'mixed')} or a mapping, got {difficulty!r}"
        )
    weights = {k: float(v) for k, v in difficulty.items() if float(v) > 0}
    bad = set(weights) - set(DIFFICULTIES)
    if bad or not weights:
        raise ValueError(
            f"difficulty weights need positive entries among {DIFFICULTIES}, got {dict(difficulty)}"
        )
    return weights


def _families(families: Sequence[str] | None) -> list[str]:
    names = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"unknown families {unknown}; available: {list(FAMILIES)}")
    return names


def iter_items(
    split: str,
    n: int,
    *,
    seed: int,
    families: Sequence[str] | None = None,
    difficulty: Difficulty = "easy",
    mc_fraction: float = 0.25,
) -> Iterator[tuple[int, Item]]:
    """Items ``0..n-1`` of a split without images; family cycles through ``families`` for balance."""
    names = _families(families)
    weights = difficulty_weights(difficulty)
    if not 0.0 <= mc_fraction <= 1.0:
        raise ValueError(f"mc_fraction must be in [0, 1], got {mc_fraction}")
    for i in range(n):
        yield i, _item(split, i, 0, seed, names, weights, mc_fraction)


def _item(
    split: str,
    i: int,
    attempt: int,
    seed: int,
    names: list[str],
    weights: dict[str, float],
    mc_fraction: float,
) -> Item:
    rng = random.Random(f"mssr-builtin:{seed}:{split}:{i}:{attempt}")
    family = names[i % len(names)]
    difficulty = rng.choices(list(weights), weights=list(weights.values()))[0]
    mc = rng.random() < mc_fraction
    return make_item(f"{split}-{i:05d}", rng, family, difficulty, mc)


def generate_dataset(
    out_dir: str | Path,
    *,
    n_train: int = DEFAULTS["n_train"],
    n_val: int = DEFAULTS["n_val"],
    n_test: int = DEFAULTS["n_test"],
    seed: int = DEFAULTS["seed"],
    image_size: int = DEFAULTS["image_size"],
    families: Sequence[str] | None = DEFAULTS["families"],
    difficulty: Difficulty = DEFAULTS["difficulty"],
    mc_fraction: float = DEFAULTS["mc_fraction"],
) -> dict[str, Path]:
    """Write ``{split}.jsonl`` + ``images/{id}.png`` + ``manifest.json`` into ``out_dir``.

    Returns ``{"train": path, "val": path, "test": path, "dir": out_dir, "manifest": path}``.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    names = _families(families)
    weights = difficulty_weights(difficulty)
    counts = {"test": n_test, "val": n_val, "train": n_train}
    seen: set[str] = set()
    paths: dict[str, Path] = {}
    redraws = 0
    t0 = time.perf_counter()
    for split in ("test", "val", "train"):
        rows = []
        for i in range(counts[split]):
            for attempt in range(MAX_ATTEMPTS):
                item = _item(split, i, attempt, seed, names, weights, mc_fraction)
                png = _png_bytes(item, image_size)
                key = content_hash(png, item.question)
                if key not in seen:
                    break
                redraws += 1
            else:
                raise RuntimeError(
                    f"{split} item {i}: no unseen (image, question) after {MAX_ATTEMPTS} draws"
                )
            seen.add(key)
            rel = f"images/{item.id}.png"
            (out / rel).write_bytes(png)
            rows.append(item.to_row(rel))
        paths[split] = out / f"{split}.jsonl"
        write_jsonl_atomic(paths[split], rows)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "config": {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "seed": seed,
            "image_size": image_size,
            "families": names,
            "difficulty": weights,
            "mc_fraction": mc_fraction,
        },
        "redraws_for_duplicates": redraws,
        "seconds": round(time.perf_counter() - t0, 2),
        "format": "verl/EasyR1 style: 'problem' holds '<image>' + question, 'images' relative PNG paths",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return {**{s: paths[s] for s in SPLITS}, "dir": out, "manifest": out / "manifest.json"}


def _png_bytes(item: Item, size: int) -> bytes:
    buf = io.BytesIO()
    item.render(size).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def content_hash(png: bytes, question: str) -> str:
    """Identity of an (image, question) pair, used to keep splits free of duplicates."""
    return hashlib.sha256(png + b"\0" + question.encode()).hexdigest()


def config_key(**cfg: Any) -> str:
    """A short hash of the full config (defaults filled in) and the generator version."""
    full = {**DEFAULTS, **cfg}
    unknown = set(full) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown dataset options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    full["families"] = _families(full["families"])
    full["difficulty"] = difficulty_weights(full["difficulty"])
    blob = json.dumps({"v": GENERATOR_VERSION, **full}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_dataset(cache_dir: str | Path, **cfg: Any) -> Path:
    """The dataset directory for ``cfg`` under ``cache_dir``, generated on first use only.

    Generation goes to a temporary directory renamed into place, so concurrent callers (e.g. several ranks)
    never see a half-written dataset.
    """
    key = config_key(**cfg)
    final = Path(cache_dir) / f"builtin-{key}"
    if (final / "manifest.json").is_file():
        return final
    write_dir_atomic(
        final, lambda tmp: generate_dataset(tmp, **cfg), complete=lambda d: (d / "manifest.json").is_file()
    )
    return final


def corpus_texts(
    n: int = 4000,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    difficulty: Difficulty = "mixed",
    mc_fraction: float = 0.5,
    include_vocabulary: bool = True,
) -> Iterator[str]:
    """Texts for training a tokenizer: questions and worked solutions of ``n`` items (no images drawn).

    Uses its own seed stream (split name ``corpus``), so it never reproduces evaluation items. With
    ``include_vocabulary`` it first yields every possible answer of every family/difficulty (colour words,
    numbers) so that none is missing from the tokenizer's training text.
    """
    if include_vocabulary:
        yield " ".join(answer_vocabulary(families))
    for _, item in iter_items(
        "corpus", n, seed=seed, families=families, difficulty=difficulty, mc_fraction=mc_fraction
    ):
        yield item.question
        yield item.solution


def answer_vocabulary(families: Sequence[str] | None = None) -> list[str]:
    """Every answer any template of the given families can produce (free-form), plus the choice letters."""
    words: set[str] = set("ABCD")
    for name in _families(families):
        fam = FAMILIES[name]
        for difficulty, templates in fam.templates.items():
            for template in templates:
                scene = fam.sample(random.Random(0), difficulty, template)
                words.update(fam.options(scene))
    return sorted(words, key=lambda w: (not w.isdigit(), int(w) if w.isdigit() else 0, w))


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per family, difficulty, template, answer type, and the answer distribution per family."""
    rows = list(rows)
    by = lambda key: dict(sorted(Counter(str(r.get(key)) for r in rows).items()))  # noqa: E731
    answers: dict[str, Counter] = {}
    for r in rows:
        answers.setdefault(str(r.get("family")), Counter())[str(r["answer"])] += 1
    return {
        "n": len(rows),
        "family": by("family"),
        "difficulty": by("difficulty"),
        "template": by("template"),
        "answer_type": by("answer_type"),
        "answers": {f: dict(c.most_common()) for f, c in sorted(answers.items())},
    }
