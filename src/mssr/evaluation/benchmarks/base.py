"""The benchmark interface: one item schema (:class:`BenchItem`), an adapter per benchmark
(:class:`Benchmark`), and the registry that resolves names given to ``mssr eval --benchmarks``.

An adapter reads its benchmark's published files (see ``docs/evaluation.md`` for where to get them and the
layouts) into items that carry, besides question/images/answer, the benchmark's grading convention in
``extra["grading"]`` (read by :class:`mssr.evaluation.grading.BenchmarkReward`):

* ``choice`` — one option letter is right; ``choices`` (when the options are text) lets the verifier also
  accept the option's text; options shown only in the image are graded by letter;
* ``letters`` — a set of option letters (LogicVista's "A, C"), order-free;
* ``yesno`` — Yes/No questions (HallusionBench);
* ``free`` — numbers, expressions or text through :func:`mssr.rewards.verify` (``extra["verify_type"]`` and
  ``extra["precision"]`` as the benchmark defines them).

An adapter may also read a system's published responses to its problems (:meth:`Benchmark.load_responses`,
giving :class:`GradeItem` s with the benchmark's own verdicts when the file carries them): ``mssr grade``
regrades those (:mod:`mssr.evaluation.regrade`). The problems are read by the same :meth:`Benchmark.parse`
code path as for ``mssr eval``: one reader per benchmark.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.data.record import CHOICE_LETTERS, Record
from mssr.evaluation.benchmarks.readers import TABLE_SUFFIXES, BenchmarkDataError, ImageRef, Row, read_rows
from mssr.rewards.official_rules import ALL_RULES, RuleSet
from mssr.rewards.verify import Verdict, verify

log = logging.getLogger(__name__)
GRADINGS = ("choice", "letters", "yesno", "free")
#: JSON files of a ``datasets`` export that are not data
METADATA_FILES = frozenset({"dataset_info.json", "state.json", "dataset_dict.json", "manifest.json"})


class UnknownBenchmarkError(ValueError):
    """A benchmark name that is not registered."""


@dataclass
class BenchItem:
    """One benchmark item before its images are decoded (see :meth:`to_record`)."""

    id: str
    question: str
    answer: str
    answer_type: str  # a Record answer type: integer | float | text | choice
    images: list[ImageRef] = field(default_factory=list)
    choices: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> Record:
        """Decode the images (RGB) into a :class:`~mssr.data.record.Record` — what prompts and rewards use."""
        return Record(
            id=self.id,
            question=self.question,
            images=[ref.load() for ref in self.images],
            answer=self.answer,
            answer_type=self.answer_type,
            choices=list(self.choices) if self.choices is not None else None,
            extra=dict(self.extra),
        )


@dataclass
class GradeItem:
    """One published response to regrade (``mssr grade``), with the problem's fields as the benchmark states
    them (not normalised: the benchmark's own scoring saw them so). ``official`` is the benchmark's verdict and
    ``official_extraction`` the answer its pipeline extracted, when the responses file carries them."""

    id: str
    response: str
    answer: str
    answer_type: str | None = None
    choices: list[str] | None = None
    precision: int | None = None
    question_type: str | None = None
    question: str = ""
    official: bool | None = None
    official_extraction: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # breakdown keys and anything else worth reporting


@dataclass
class BenchmarkData:
    """A loaded benchmark: its items, the rows it left out (with the reason), and the file it came from."""

    name: str
    title: str
    items: list[BenchItem]
    source: str
    skipped: list[str] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


class Benchmark:
    """An adapter: subclasses set the class attributes and implement :meth:`parse_row` (or :meth:`parse`).

    Attributes:
        name: registry key (``--benchmarks`` name).
        title: column title in summary tables.
        dirs: sub-directory names looked for under ``--data-dir`` (first existing wins).
        files: file names or glob patterns looked for in that directory, in order of preference.
        obtain: one line on where the files come from (``mssr eval --list``; details in docs/evaluation.md).
    """

    name: str = ""
    title: str = ""
    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    obtain: str = ""

    # -- locating files
    def locate(self, path: str | Path) -> list[Path]:
        """The data file(s) for ``path``: the path itself if it is a file, else the first pattern of
        :attr:`files` that matches inside it (several parquet/arrow shards of one split are read together),
        else the arrow shards of a ``datasets`` ``save_to_disk`` directory (``*.arrow``, or ``test/*.arrow``
        etc. for a saved ``DatasetDict``)."""
        p = Path(path)
        if p.is_file():
            return [p]
        if not p.is_dir():
            raise BenchmarkDataError(f"{self.name}: {p} does not exist")
        for pattern in self.files:
            hits = sorted(
                h
                for h in p.glob(pattern)
                if h.is_file() and h.suffix in TABLE_SUFFIXES and h.name not in METADATA_FILES
            )
            if len(hits) == 1 or (hits and all(h.suffix in (".parquet", ".arrow") for h in hits)):
                return hits
            if len(hits) > 1:
                raise BenchmarkDataError(
                    f"{self.name}: several files match {pattern!r} in {p}: {[h.name for h in hits]}; "
                    "pass the one to use with --data NAME=FILE"
                )
        for sub in (".", "testmini", "test", "train", "validation"):  # datasets' save_to_disk layouts
            shards = sorted((p / sub).glob("*.arrow"))
            if shards:
                return shards
        found = sorted(f.name for f in p.iterdir() if f.suffix in TABLE_SUFFIXES)
        raise BenchmarkDataError(
            f"{self.name}: no data file in {p} (looked for {list(self.files)}; found {found or 'nothing'}). "
            f"See docs/evaluation.md for the expected layout."
        )

    def find(self, data_dir: str | Path) -> Path:
        """The benchmark's directory under ``data_dir`` (one of :attr:`dirs`, case-insensitive)."""
        root = Path(data_dir)
        if not root.is_dir():
            raise BenchmarkDataError(f"{self.name}: data directory {root} does not exist")
        names = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
        for d in self.dirs:
            if d.lower() in names:
                return names[d.lower()]
        raise BenchmarkDataError(
            f"{self.name}: none of {list(self.dirs)} under {root}; put the files there or pass "
            f"--data {self.name}=PATH (see docs/evaluation.md)"
        )

    # -- reading
    def read(self, path: str | Path) -> tuple[list[Path], list[Row]]:
        """The data file(s) for ``path`` (:meth:`locate`) and all their rows, unparsed (rows of several shards
        say which shard they come from)."""
        files = self.locate(path)
        rows = [
            row if len(files) == 1 else Row(row.data, f"{f.name}: {row.where}", row.key)
            for f in files
            for row in read_rows(f)
        ]
        return files, rows

    def load(
        self,
        path: str | Path,
        *,
        require_images: bool = True,
        limit: int | None = None,
        **options: Any,
    ) -> BenchmarkData:
        """Read the benchmark at ``path`` (its directory or data file).

        ``require_images``: a missing image file is an error naming it (default); ``False`` keeps the items
        and lists them in ``missing_images`` (to check metadata without the images). ``limit``: the first
        ``limit`` items only (in file order).
        """
        files, rows = self.read(path)
        file = files[0]
        skipped: list[str] = []
        items = self.parse(rows, file, self.image_root(file, file.parent), skipped, **options)
        items = unique_ids(items, file)
        if not items:  # a table of 0.0 accuracy over nothing would look like a result
            why = f" (all {len(skipped)} rows left out; first: {skipped[0]})" if skipped else ""
            raise BenchmarkDataError(f"{self.name}: {file} holds no items{why}")
        if limit is not None:
            items = items[:limit]
        missing = [
            f"{it.id}: {ref.path}"
            for it in items
            for ref in it.images
            if ref.path is not None and not ref.exists()
        ]
        if missing and require_images:
            raise BenchmarkDataError(
                f"{self.name}: {len(missing)} image file(s) referenced by {file} are missing, e.g. "
                + "; ".join(missing[:5])
            )
        if skipped:
            log.warning("%s: left out %d row(s) of %s; first: %s", self.name, len(skipped), file, skipped[0])
        source = str(file) if len(files) == 1 else f"{file.parent}/ ({len(files)} shards)"
        return BenchmarkData(self.name, self.title, items, source, skipped, missing)

    images_subdir: str | None = None  # e.g. "images": resolve relative paths there when that folder exists

    def image_root(self, file: Path, root: Path) -> Path:
        """Where relative image paths are resolved: the data file's directory, or its `images_subdir`."""
        sub = root / self.images_subdir if self.images_subdir else None
        return sub if sub is not None and sub.is_dir() else root

    def parse(
        self, rows: list[Row], file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> list[BenchItem]:
        """The items of ``rows`` (read from ``file``): :meth:`parse_row` on each row in order, leaving out the
        rows it returns ``None`` for. An adapter implements :meth:`parse_row`, or overrides this where a row
        is not read on its own."""
        items = []
        for index, row in enumerate(rows):
            item = self.parse_row(row, index, file, image_root, skipped, **options)
            if item is not None:
                items.append(item)
        return items

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        """One row's item (``index``: its place in ``rows``), or ``None`` for a row left out, after appending
        the reason to ``skipped``; a malformed row raises :class:`BenchmarkDataError`."""
        raise NotImplementedError

    # -- regrading published responses (mssr grade)
    #: :class:`GradeItem` attributes or ``meta`` keys that ``mssr grade`` breaks accuracy/agreement down by
    breakdown_keys: tuple[str, ...] = ("answer_type", "question_type")

    def load_responses(self, problems: str | Path, responses: str | Path) -> list[GradeItem]:
        """The responses of a system's output file joined with their problems (the benchmark's file or its
        directory, as for :meth:`load`). Adapters that support ``mssr grade`` override this; a malformed file
        raises :class:`BenchmarkDataError` naming the file and the problem id."""
        raise NotImplementedError(f"{self.name}: reading published responses is not supported")

    def verify_response(self, item: GradeItem, mode: str, rules: RuleSet = ALL_RULES) -> Verdict:
        """Is the response right? mssr's verifier in ``mode`` with the optional ``rules``, given the question too
        (a restated question is not read as the answer); an adapter may apply its benchmark's own scoring."""
        return verify(
            item.response,
            item.answer,
            answer_type=item.answer_type,
            choices=item.choices,
            mode=mode,
            precision=item.precision,
            question=item.question or None,
            rules=rules,
        )

    def official_prediction(self, item: GradeItem, extraction: str | None) -> str | None:
        """The benchmark's normalised prediction for an extraction (for disagreement analysis), if defined."""
        return None


def unique_ids(items: list[BenchItem], file: Path) -> list[BenchItem]:
    """Ids must be unique (results are keyed by them): a repeated id gets ``#2``, ``#3`` … in file order."""
    seen: dict[str, int] = {}
    for it in items:
        k = seen.get(it.id, 0) + 1
        seen[it.id] = k
        if k > 1:
            log.warning("%s: duplicate item id %r renamed to %r", file, it.id, f"{it.id}#{k}")
            it.id = f"{it.id}#{k}"
    return items


# ------------------------------------------------------------------------------------------------- helpers
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])\s*[\).:：]\s*(.*\S)\s*$")
_CHOICES_HEADER = re.compile(r"(?:^|\n)\s*(?:Choices?|Options?)\s*[:：]?\s*\n", re.I)


def options_from_question(question: str) -> list[str] | None:
    """The options a question lists, one per line with consecutive letters from A (``A:40°``, ``(B) 60``,
    ``C. 120``): those after a ``Choices:``/``Options:`` line, else a run of option lines ending the question.
    ``None`` when it lists fewer than two."""
    lines = question.split("\n")
    headers = list(_CHOICES_HEADER.finditer(question))
    if headers:
        lines = question[headers[-1].end() :].split("\n")
    else:  # a trailing run of option lines
        start = len(lines)
        while start > 0 and (_OPTION_LINE.match(lines[start - 1]) or not lines[start - 1].strip()):
            start -= 1
        lines = lines[start:]
    options: list[str] = []
    for line in lines:
        hit = _OPTION_LINE.match(line)
        if not hit:
            if line.strip():
                break
            continue
        if len(options) >= len(CHOICE_LETTERS) or hit.group(1) != CHOICE_LETTERS[len(options)]:
            break
        options.append(hit.group(2).strip())
    return options if len(options) >= 2 else None


def format_choices(choices: Sequence[str]) -> str:
    """``Choices:\\n(A) …\\n(B) …`` (MathVista's listing)."""
    return "Choices:\n" + "\n".join(f"({CHOICE_LETTERS[i]}) {c}" for i, c in enumerate(choices))


_LETTER = re.compile(r"^\(?([A-Ja-j])\)?\.?$")
_LETTER_SET = re.compile(r"^\s*\(?[A-J]\)?(?:\s*(?:,|、|and|&|/|\s)\s*\(?[A-J]\)?)+\s*$")


def letter_answer(answer: str) -> str | None:
    """``"B"``, ``"(b)"``, ``"B."`` → ``"B"``; anything else → ``None``."""
    m = _LETTER.match(answer.strip())
    return m.group(1).upper() if m else None


def is_letter_set(answer: str) -> bool:
    """``"A, C"``, ``"B and D"``: several option letters."""
    return bool(_LETTER_SET.match(answer))


def letters_of(text: str) -> list[str]:
    """The distinct option letters A–J standing alone in ``text``, sorted (``"C and A"`` → ``["A", "C"]``)."""
    return sorted(set(re.findall(r"(?<![A-Za-z])([A-J])(?![A-Za-z])", text)))


def option_item(
    item_id: str,
    question: str,
    answer: str,
    images: list[ImageRef],
    extra: dict[str, Any],
    options: list[str] | None,
) -> BenchItem:
    """An item of a multiple-choice benchmark, whatever form its gold answer takes: an option letter
    (``"B"``, ``"(B)"``) → ``choice``; several letters (``"A, C"``, ``"C\\nD"``) → ``letters``; the text of one
    of ``options`` → ``choice`` with that option's letter; anything else → graded by value."""
    letter = letter_answer(answer)
    if letter is not None:
        if options is not None and CHOICE_LETTERS.index(letter) >= len(options):
            options = None  # the listing in the text is incomplete: grade by letter
        return choice_item(item_id, question, letter, images, extra, options)
    if is_letter_set(answer):
        letters = ", ".join(letters_of(answer))
        return BenchItem(item_id, question, letters, "text", images, None, {**extra, "grading": "letters"})
    if options is not None:
        norm = [" ".join(o.split()) for o in options]
        key = " ".join(answer.split())
        if norm.count(key) == 1:
            return choice_item(item_id, question, CHOICE_LETTERS[norm.index(key)], images, extra, options)
    return free_item(item_id, question, answer, images, extra)


def _number_type(answer: str) -> str | None:
    s = answer.strip()
    if re.fullmatch(r"[-+]?\d+", s):
        return "integer"
    if re.fullmatch(r"[-+]?(?:\d+\.\d*|\.\d+)", s):
        return "float"
    return None


def free_item(
    item_id: str,
    question: str,
    answer: str,
    images: list[ImageRef],
    extra: dict[str, Any],
    *,
    verify_type: str | None = None,
    precision: int | None = None,
) -> BenchItem:
    """An item graded by value (numbers, expressions, text). Without a ``verify_type`` from the benchmark, a
    gold answer that is a plain integer or decimal gets ``integer``/``float`` (enabling the verifier's
    number extraction, e.g. "The area is 12.")."""
    if verify_type is None:
        verify_type = _number_type(answer)
    record_type = verify_type if verify_type in ("integer", "float") else "text"
    extra = {**extra, "grading": "free", "verify_type": verify_type, "precision": precision}
    return BenchItem(item_id, question, answer, record_type, images, None, extra)


def choice_item(
    item_id: str,
    question: str,
    letter: str,
    images: list[ImageRef],
    extra: dict[str, Any],
    choices: list[str] | None,
) -> BenchItem:
    """An item whose answer is one option letter; ``choices`` are the option texts when known."""
    if choices is not None and not 0 <= CHOICE_LETTERS.index(letter) < len(choices):
        raise ValueError(f"answer {letter} is not among {len(choices)} options")
    extra = {**extra, "grading": "choice"}
    if choices is not None:
        return BenchItem(item_id, question, letter, "choice", images, list(choices), extra)
    return BenchItem(item_id, question, letter, "text", images, None, extra)


# ------------------------------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Benchmark]] = {}
_ALIASES: dict[str, str] = {}
#: the five benchmarks of the paper's Table 1, in its column order
PAPER_BENCHMARKS = ("mathverse", "mathvista", "mmk12", "r1onevision", "hallusionbench")


def register(name: str, *aliases: str) -> Callable[[type[Benchmark]], type[Benchmark]]:
    def deco(cls: type[Benchmark]) -> type[Benchmark]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"benchmark {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        for a in aliases:
            _ALIASES[a] = name
        return cls

    return deco


def available() -> list[str]:
    return sorted(_REGISTRY)


def gradable() -> list[str]:
    """The benchmarks whose published responses ``mssr grade`` reads (their adapter overrides
    :meth:`Benchmark.load_responses`)."""
    return sorted(n for n, cls in _REGISTRY.items() if cls.load_responses is not Benchmark.load_responses)


def get(name: str) -> Benchmark:
    """The adapter registered as ``name`` (or one of its aliases, case-insensitive)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}; known: {', '.join(available())}, 'paper' (= {','.join(PAPER_BENCHMARKS)}) "
            "and 'jsonl:PATH' for your own file"
        )
    return _REGISTRY[key]()


def expand(names: Iterable[str]) -> list[str]:
    """Split a ``--benchmarks`` value: commas, ``paper`` → the Table 1 five, duplicates dropped, order kept."""
    out: list[str] = []
    for raw in names:
        for part in str(raw).split(","):
            name = part.strip()
            if not name:
                continue
            for n in PAPER_BENCHMARKS if name.lower() == "paper" else (name,):
                if n not in out:
                    out.append(n)
    return out
