"""Does the official-mode grader generalise to systems it was not developed on?

* :func:`response_style` sorts a response into the styles that part rule graders from the official pipeline
  (empty, refusal, echoed options, restated question, program, yes/no statement, option text, long chain of
  thought, short answer); ``mssr grade`` reports agreement per style.
* :func:`leave_one_out` is the leave-one-system-out protocol over graded files (the development files and the
  synthetic files of :mod:`mssr.evaluation.study.synthetic`): for each file left out, the optional rules of
  :mod:`mssr.rewards.official_rules` are selected on the *other* files only — a rule is switched off when
  switching it off raises their pooled agreement — and the file left out is graded with that selection.
  The selection runs in this process (``num_workers=0``), since rules are switched per process.

Command: ``mssr grade mathvista --problems testmini.json --responses output_*.json --synthetic
--leave-one-out`` (docs/rewards.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mssr.evaluation.benchmarks import get
from mssr.evaluation.benchmarks.base import GradeItem
from mssr.rewards import official_rules as rules
from mssr.rewards.extract import answer_statements
from mssr.rewards.verify import MAX_RESPONSE_CHARS, _last_sentence, is_refusal

#: response style -> description (``mssr grade`` prints agreement per style)
STYLES = {
    "empty": "empty response",
    "refusal": "refuses or says the answer cannot be determined",
    "echoed_options": "echoes option lines only",
    "question_echo": "restates the query (Hint:/Question:/Choices: lines)",
    "program": "code block or program-of-thought",
    "yesno_statement": "yes/no question answered by a statement",
    "option_text": "multiple choice answered without an option letter",
    "long_cot": "long reasoning (over 400 characters) with an answer",
    "short": "short answer",
}


def response_style(item: GradeItem) -> str:
    """The style of ``item.response`` (see :data:`STYLES`); the first that applies. Reads the last
    ``MAX_RESPONSE_CHARS`` characters, as the verifier does (the report runs outside the grading deadline)."""
    text = item.response[-MAX_RESPONSE_CHARS:]
    if not text.strip():
        return "empty"
    choices = item.choices
    if choices and rules.echoed_options(text, choices) is not None:
        return "echoed_options"
    if re.search(r"(?mi)^[^\S\n]*(?:hint|question|choices)[^\S\n]*:", text):  # (\s* would be quadratic)
        return "question_echo"
    if "```" in text or re.search(r"(?m)^[^\S\n]*print\(|^[^\S\n]*def \w+\(", text):
        return "program"
    statements = answer_statements(text, choices, item.answer_type)
    if not statements and (is_refusal(_last_sentence(text)) or is_refusal(text[-300:])):
        return "refusal"
    yes_no = re.compile(r"\W*\(?(?:yes|no|[ab])\b", re.I)
    if (
        choices
        and rules.yes_no_index(choices) is not None
        and not yes_no.match(text.strip())
        and not any(yes_no.match(s) for s in statements)
    ):
        return "yesno_statement"
    lettered = re.search(r"\([A-Z]\)|\b(?:option|choice|answer(?: is)?)\s*:?\s*\(?[A-Z]\b", text)
    if choices and not lettered and not re.fullmatch(r"\s*\(?[A-Za-z]\)?[.:]?\s*", text):
        return "option_text"
    if len(text) > 400:
        return "long_cot"
    return "short"


# ----------------------------------------------------------------------------------------------- protocol
@dataclass
class FileResult:
    name: str
    n: int
    agree_all: int  # all rules on (what ships)
    agree_none: int  # no optional rule
    agree_loso: int  # rules selected on the other files
    disabled: list[str] = field(default_factory=list)  # rules the selection switched off

    def pct(self, k: int) -> float:
        return 100.0 * k / self.n if self.n else 0.0


def _agreements(items: list[GradeItem], disabled: frozenset[str]) -> list[bool]:
    fmt = get("mathvista")
    rule_set = rules.RuleSet.without(disabled)
    return [
        bool(fmt.verify_response(it, "official", rule_set).correct) == bool(it.official)
        for it in items
        if it.official is not None
    ]


def leave_one_out(files: dict[str, list[GradeItem]], rule_names: list[str] | None = None) -> list[FileResult]:
    """The leave-one-system-out protocol over ``files`` (name -> graded items); see the module docstring."""
    names = list(rule_names if rule_names is not None else rules.RULES)
    configs: dict[frozenset[str], dict[str, list[bool]]] = {}

    def agree(cfg: frozenset[str]) -> dict[str, list[bool]]:
        if cfg not in configs:
            configs[cfg] = {f: _agreements(items, cfg) for f, items in files.items()}
        return configs[cfg]

    everything = frozenset(rules.RULES)
    base: frozenset[str] = frozenset()  # every rule on; only those in ``names`` may be switched off
    results = []
    for held in files:
        train = [f for f in files if f != held]
        on = agree(base)
        score_on = sum(sum(on[f]) for f in train)
        off = []
        for r in names:
            without = agree(base | {r})
            if sum(sum(without[f]) for f in train) > score_on:
                off.append(r)
        chosen = agree(base | frozenset(off))[held]
        results.append(
            FileResult(
                name=held,
                n=len(chosen),
                agree_all=sum(agree(base)[held]),
                agree_none=sum(agree(everything)[held]),
                agree_loso=sum(chosen),
                disabled=off,
            )
        )
    return results


def format_table(results: list[FileResult]) -> str:
    lines = [
        f"  {'file left out':40s} {'n':>5s} {'no rules':>9s} {'all rules':>9s} {'LOSO':>8s}  rules switched off",
    ]
    for r in results:
        name = r.name if r.name.startswith("synthetic:") else r.name.replace("\\", "/").rsplit("/", 1)[-1]
        lines.append(
            f"  {name[:40]:40s} {r.n:5d} {r.pct(r.agree_none):8.2f}% {r.pct(r.agree_all):8.2f}% "
            f"{r.pct(r.agree_loso):7.2f}%  {', '.join(r.disabled) or '-'}"
        )
    return "\n".join(lines)


def per_style(
    items: list[GradeItem], verdicts: list[dict[str, Any]], classes: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """``style -> {n, agree, classes}`` over the items that carry an official verdict; ``classes`` (pid ->
    disagreement class) fills ``classes`` with the count of each class among the style's disagreements."""
    out: dict[str, dict[str, Any]] = {}
    for it, v in zip(items, verdicts):
        if it.official is None:
            continue
        cell = out.setdefault(response_style(it), {"n": 0, "agree": 0, "classes": {}})
        cell["n"] += 1
        agree = bool(v["verdict"]) == bool(it.official)
        cell["agree"] += int(agree)
        if not agree and classes is not None:
            cls = classes.get(it.id, "unclassified")
            cell["classes"][cls] = cell["classes"].get(cls, 0) + 1
    return out


def synthetic_files(problems_path: Any, seed: int = 0) -> dict[str, list[GradeItem]]:
    """The synthetic graded files of :mod:`mssr.evaluation.study.synthetic` for the problems at ``problems_path``,
    read back through the MathVista adapter (name ``synthetic:<style>``)."""
    import json
    import tempfile
    from pathlib import Path

    from mssr.evaluation.study.synthetic import make_all
    from mssr.io import read_json

    fmt = get("mathvista")
    path = Path(problems_path)
    if path.is_dir():
        path = path / "testmini.json"
    data = read_json(path)
    problems = data if isinstance(data, dict) else {str(r["pid"]): r for r in data}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style, rows in make_all(problems, seed).items():
            f = Path(tmp) / f"{style}.json"
            f.write_text(json.dumps(rows))
            out[f"synthetic:{style}"] = fmt.load_responses(path, f)
    return out
