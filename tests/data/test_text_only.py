"""The question text alone does not give the answer: text-only baselines score at chance on held-out items.

Run with ``-s`` to print the numbers quoted in docs/data.md.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from mssr.data.builtin import FAMILIES, iter_items


def tokens(text: str) -> list[str]:
    feats = [w.lower() for w in re.findall(r"[A-Za-z]+|\d+|=", text)]
    feats += [f"{a}_{b}" for a, b in itertools.pairwise(feats)]
    m = re.search(r"Choices: A\. (.+?) B\. (.+?) C\. (.+?) D\. (.+)$", text)
    if m:
        feats += [f"opt{'ABCD'[k]}={v}" for k, v in enumerate(m.groups())]
    return feats


class NaiveBayes:
    """Multinomial naive Bayes over text features with add-one smoothing (numpy, dense)."""

    def fit(self, texts: list[str], labels: list[str]) -> NaiveBayes:
        self.labels = sorted(set(labels))
        feats = [tokens(t) for t in texts]
        self.index = {f: k for k, f in enumerate(sorted({f for fs in feats for f in fs}))}
        lab = {y: k for k, y in enumerate(self.labels)}
        counts = np.ones((len(self.labels), len(self.index)))
        prior = np.zeros(len(self.labels))
        for fs, y in zip(feats, labels, strict=True):
            prior[lab[y]] += 1
            for f in fs:
                counts[lab[y], self.index[f]] += 1
        self.log_prior = np.log(prior / prior.sum())
        self.log_lik = np.log(counts / counts.sum(axis=1, keepdims=True))
        return self

    def predict(self, texts: list[str]) -> list[str]:
        x = np.zeros((len(texts), len(self.index)))
        for i, t in enumerate(texts):
            for f in tokens(t):
                if f in self.index:
                    x[i, self.index[f]] += 1
        scores = x @ self.log_lik.T + self.log_prior
        return [self.labels[k] for k in scores.argmax(axis=1)]


def accuracy(pred: list[str], items) -> float:
    return sum(p == it.answer for p, it in zip(pred, items, strict=True)) / len(items)


def build(split: str, n: int, difficulty, mc_fraction: float):
    return [item for _, item in iter_items(split, n, seed=11, difficulty=difficulty, mc_fraction=mc_fraction)]


def chance_level(items) -> float:
    """Expected accuracy of a guess that ignores the image: 1/4 for multiple choice, else 1/|answer range|."""
    out = []
    for it in items:
        if it.answer_type == "choice":
            out.append(0.25)
        else:
            options = FAMILIES[it.family].options(it.scene)
            assert it.answer in options
            out.append(1.0 / len(options))
    return sum(out) / len(out)


def key(it) -> tuple:
    return it.family, it.template, it.difficulty, it.answer_type == "choice"


def baselines(train, val) -> dict[str, float]:
    majority = {}
    grouped: dict[tuple, Counter] = defaultdict(Counter)
    for it in train:
        grouped[key(it)][it.answer] += 1
    for k, c in grouped.items():
        majority[k] = c.most_common(1)[0][0]
    const_acc = sum(majority.get(key(it)) == it.answer for it in val) / len(val)
    nb = NaiveBayes().fit([it.question for it in train], [it.answer for it in train])
    nb_acc = accuracy(nb.predict([it.question for it in val]), val)
    # positive control: the same classifier given the worked steps (values read from the image) wins easily
    steps = [it.solution.split("</think>")[0] for it in train]
    leak = NaiveBayes().fit(steps, [it.answer for it in train])
    leak_acc = accuracy(leak.predict([it.solution.split("</think>")[0] for it in val]), val)
    return {
        "chance": chance_level(val),
        "constant_per_template": const_acc,
        "naive_bayes": nb_acc,
        "control_with_steps": leak_acc,
    }


@pytest.mark.parametrize(("difficulty", "mc_fraction"), [("easy", 0.25), ("mixed", 0.5)])
def test_text_only_baselines_are_at_chance(difficulty, mc_fraction):
    train = build("train", 2500, difficulty, mc_fraction)
    val = build("val", 1200, difficulty, mc_fraction)
    res = baselines(train, val)
    per = [
        0.25 if it.answer_type == "choice" else 1 / len(FAMILIES[it.family].options(it.scene)) for it in val
    ]
    sigma = math.sqrt(sum(p * (1 - p) for p in per)) / len(val)
    print(
        f"\n[{difficulty}, mc={mc_fraction}] "
        + "  ".join(f"{k}={v:.3f}" for k, v in res.items())
        + f"  (3 sigma={3 * sigma:.3f})"
    )
    assert res["constant_per_template"] <= res["chance"] + 3 * sigma + 0.01
    assert res["naive_bayes"] <= res["chance"] + 3 * sigma + 0.01
    # the same classifier does exploit text that carries the answer (values read from the image)
    assert res["control_with_steps"] > res["chance"] + 0.4
