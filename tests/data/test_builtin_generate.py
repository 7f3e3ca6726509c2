"""Generated datasets: determinism, disjoint splits, duplicate redraws, caching, and the read-back path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mssr.data import load_records
from mssr.data.builtin import (
    SPLITS,
    answer_vocabulary,
    config_key,
    corpus_texts,
    ensure_dataset,
    generate_dataset,
)
from mssr.data.builtin import generate as gen_mod

SMALL = {"n_train": 24, "n_val": 8, "n_test": 8, "image_size": 56}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def pair_hashes(root: Path, split: str) -> dict[str, str]:
    """sha256 of (image bytes, question text) per row, computed from the files."""
    out = {}
    for line in (root / f"{split}.jsonl").read_text().splitlines():
        row = json.loads(line)
        img = (root / row["images"][0]).read_bytes()
        out[row["id"]] = hashlib.sha256(img + row["problem"].encode()).hexdigest()
    return out


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a = generate_dataset(tmp_path / "a", seed=7, **SMALL)["dir"]
    b = generate_dataset(tmp_path / "b", seed=7, **SMALL)["dir"]
    c = generate_dataset(tmp_path / "c", seed=8, **SMALL)["dir"]
    ta, tb, tc = tree_bytes(a), tree_bytes(b), tree_bytes(c)
    assert len(ta) == 3 + 40  # three jsonl + one png per item
    assert ta == tb
    assert ta["train.jsonl"] != tc["train.jsonl"]


def test_splits_are_disjoint_and_eval_splits_do_not_depend_on_n_train(tmp_path):
    small = generate_dataset(tmp_path / "s", seed=1, **SMALL)["dir"]
    big = generate_dataset(tmp_path / "b", seed=1, **{**SMALL, "n_train": 60})["dir"]
    hashes = {s: pair_hashes(big, s) for s in SPLITS}
    all_pairs = [h for s in SPLITS for h in hashes[s].values()]
    assert len(all_pairs) == 60 + 8 + 8 == len(set(all_pairs))
    for s in ("val", "test"):
        assert (small / f"{s}.jsonl").read_bytes() == (big / f"{s}.jsonl").read_bytes()
    ids = [i for s in SPLITS for i in hashes[s]]
    assert len(ids) == len(set(ids))


def test_duplicate_pairs_are_redrawn(tmp_path, monkeypatch):
    """Force every first draw to repeat item 0 of its split: the generator must redraw, not duplicate."""
    original = gen_mod._item

    def clashing(split, i, attempt, *args):
        item = original(split, 0 if attempt == 0 else i, attempt, *args)
        item.id = f"{split}-{i:05d}"
        return item

    monkeypatch.setattr(gen_mod, "_item", clashing)
    out = generate_dataset(tmp_path / "d", seed=0, **SMALL)
    manifest = json.loads(out["manifest"].read_text())
    # within each split every item but the first repeats that split's item 0 at attempt 0
    assert manifest["redraws_for_duplicates"] == (24 - 1) + (8 - 1) + (8 - 1)
    pairs = [h for s in SPLITS for h in pair_hashes(out["dir"], s).values()]
    assert len(pairs) == len(set(pairs))


def test_records_read_back_through_the_real_loader(tmp_path):
    out = generate_dataset(tmp_path / "r", seed=2, mc_fraction=0.5, **SMALL)
    rows = [json.loads(x) for x in out["train"].read_text().splitlines()]
    recs = load_records(out["dir"], "train")
    assert len(recs) == 24 and recs.n_skipped == 0
    for row, rec in zip(rows, recs, strict=True):
        assert row["problem"].startswith("<image>") and "<image>" not in rec.question
        assert rec.question == row["problem"][len("<image>") :]
        assert rec.answer == row["answer"] and rec.answer_type == row["answer_type"]
        assert rec.choices == row["choices"]
        assert [im.size for im in rec.images] == [(56, 56)] and rec.images[0].mode == "RGB"
        cols = rec.to_columns()
        assert {
            "answer",
            "answer_type",
            "choices",
            "question",
            "images",
            "family",
            "difficulty",
            "solution",
            "scene",
            "template",
            "id",
        } <= set(cols)
    assert {r.answer_type for r in recs} >= {"choice", "integer"}


def test_ensure_dataset_generates_once_keyed_by_config(tmp_path, monkeypatch):
    first = ensure_dataset(tmp_path, seed=3, **SMALL)
    assert (first / "manifest.json").is_file() and first.name == f"builtin-{config_key(seed=3, **SMALL)}"

    def boom(*a, **k):
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(gen_mod, "generate_dataset", boom)
    assert ensure_dataset(tmp_path, seed=3, **SMALL) == first
    monkeypatch.undo()
    other = ensure_dataset(tmp_path, seed=4, **SMALL)
    assert other != first
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(TypeError, match="unknown dataset options"):
        ensure_dataset(tmp_path, n_trian=5)


def test_config_key_fills_defaults_and_normalises():
    assert config_key() == config_key(n_train=2000, difficulty="easy")
    assert config_key(families=None) == config_key(
        families=["counting", "arithmetic", "bars", "geometry", "shapes"]
    )
    assert config_key(difficulty="mixed") == config_key(difficulty={"easy": 1, "medium": 1, "hard": 1})
    assert config_key(image_size=64) != config_key(image_size=112)


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown families"):
        generate_dataset(tmp_path, families=["poetry"], **SMALL)
    with pytest.raises(ValueError, match="difficulty"):
        generate_dataset(tmp_path, difficulty="extreme", **SMALL)
    with pytest.raises(ValueError, match="mc_fraction"):
        list(gen_mod.iter_items("x", 1, seed=0, mc_fraction=1.5))


def test_corpus_texts_cover_the_answer_vocabulary_and_are_deterministic():
    texts = list(corpus_texts(200, seed=0))
    assert texts == list(corpus_texts(200, seed=0))
    assert len(texts) == 1 + 2 * 200
    words = set(" ".join(texts).replace(".", " ").replace(",", " ").split())
    assert set(answer_vocabulary()) <= words
    assert {"red", "green", "blue", "orange", "purple", "A", "D", "0", "144"} <= set(answer_vocabulary())
    assert any(t.startswith("<think>") for t in texts) and all("<image>" not in t for t in texts)
