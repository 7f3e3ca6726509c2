"""String and number normalisation shared by extraction and equivalence.

Everything here is pure, linear-time in the input length, and never evaluates an expression whose size depends
on the input (no ``int("9"*10**6)``, no ``10**10**10``): adversarial responses must not hang a reward.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

#: Longest answer string we try to read as a number or hand to math-verify; longer ones are "unverifiable".
MAX_ANSWER_CHARS = 400


def to_text(value: object) -> str:
    """Any response-like value as ``str``: bytes are decoded as UTF-8 with replacement, ``None`` is ``""``."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        # lone surrogates (e.g. from bad JSON) would break encoders later on
        return value.encode("utf-8", errors="replace").decode("utf-8")
    return str(value)


# ---------------------------------------------------------------------------------------------- LaTeX clean-up
_TEXT_CMDS = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname|mathit|rm|bf)\s*\{([^{}]*)\}"
)
_SPACING = re.compile(r"\\[,;:!> ]|\\quad|\\qquad|~")
_DELIMS = re.compile(r"\\left|\\right|\\big|\\Big|\\bigg|\\Bigg")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°|º")
_MATH_WRAP = re.compile(r"^\s*(?:\$\$|\$|\\\[|\\\()\s*(.*?)\s*(?:\$\$|\$|\\\]|\\\))\s*$", re.S)


def strip_latex_wrappers(s: str) -> str:
    """Remove math delimiters, ``\\text{}``-like wrappers, spacing commands and ``\\left``/``\\right``."""
    s = s.strip()
    for _ in range(3):
        m = _MATH_WRAP.match(s)
        if not m:
            break
        s = m.group(1)
    for _ in range(3):  # nested \text{\textbf{x}}
        new = _TEXT_CMDS.sub(r"\1", s)
        if new == s:
            break
        s = new
    s = _SPACING.sub(" ", s)
    s = _DELIMS.sub("", s)
    s = s.replace("\\%", "%").replace("\\$", "$").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return s.strip()


# paired emphasis only: an unpaired "**" is an operator (2**3), not markdown
# markdown bold: "**x**" / "__x__" opening where a word does not touch it ("0**0**" is Python's power, not bold)
_EMPHASIS = re.compile(r"(?<![\w*])\*\*(.+?)\*\*|(?<![\w_])__(.+?)__")
_CODE = re.compile(r"`+")
_EDGE_PUNCT = " \t\r\n.,;:!?。，；：！？\"'“”‘’*"


def clean_span(s: str) -> str:
    """Tidy an extracted answer span: markdown emphasis, math delimiters, quotes, trailing punctuation."""
    s = _CODE.sub("", _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), s))
    s = strip_latex_wrappers(s)
    s = s.strip(_EDGE_PUNCT)
    s = strip_latex_wrappers(s)  # "$x$." -> "$x$" -> "x"
    return s.strip(_EDGE_PUNCT + " ")


def normalize_text(s: str) -> str:
    """Loose comparison key for free text / choice text: NFKC, LaTeX wrappers off, case and spacing folded."""
    s = unicodedata.normalize("NFKC", to_text(s))
    s = clean_span(s)
    s = s.replace("√", "\\sqrt").replace("−", "-").replace("–", "-").replace("×", "\\times")
    s = re.sub(r"\\sqrt\s*(\d+|[a-z])", r"\\sqrt{\1}", s)
    s = _DEGREE.sub("°", s)
    s = s.lower()
    s = re.sub(r"\s+", "", s)
    return s.strip(_EDGE_PUNCT)


# ---------------------------------------------------------------------------------------------- numbers
#: a plain number token as people write it: thousands separators, decimals, a sign
NUMBER_TOKEN = r"[-−+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(NUMBER_TOKEN)
_SCI = re.compile(
    rf"^({NUMBER_TOKEN})\s*(?:[eE]([-+]?\d{{1,4}})|(?:\\times|\\cdot|x|×|\*)\s*10\s*\^\s*\{{?\s*([-+−]?\d{{1,4}})\s*\}}?)$"
)
_FRAC = re.compile(r"^([-−+]?)\s*\\frac\s*\{\s*([-−+]?[\d.,]+)\s*\}\s*\{\s*([-−+]?[\d.,]+)\s*\}$")
_FRAC_SHORT = re.compile(r"^([-−+]?)\s*\\frac\s*(\d)(\d)$")  # \frac12
_SLASH = re.compile(rf"^({NUMBER_TOKEN})\s*/\s*({NUMBER_TOKEN})$")
_CURRENCY = re.compile(r"^(?:\$|€|£|¥|₹|usd|us\$|rs\.?)\s*", re.I)
_APPROX = re.compile(r"^(?:=|≈|~|\\approx|approximately|approx\.?|about|around|roughly)\s*", re.I)
# what may follow a number as its unit: letters (any script), spaces, ° / ^ 2 3 ² ³ . and the like, no digits
# beyond a power of 2 or 3
_UNIT_TAIL = re.compile(r"^(?:[^\W\d_]|[\s°/.²³'\-]|\^\s*\{?[23]\}?|\\[a-zA-Z]+|[{}])*$")


@dataclass(frozen=True)
class Number:
    """A number read from an answer string. ``percent`` is true when it was written with a % sign."""

    value: float
    percent: bool = False
    literal: str = (
        ""  # the number as written, thousands separators removed (used by MathVista's official rules)
    )


def _to_float(tok: str) -> float | None:
    tok = tok.replace(",", "").replace("−", "-").replace("+", "")
    if len(tok) > 60:
        return None
    try:
        return float(tok)
    except ValueError:
        return None


def parse_number(s: str, *, allow_unit: bool = True) -> Number | None:
    """Read ``s`` as one number (int, decimal, thousands separators, sign, %, currency, scientific notation,
    ``a/b`` and ``\\frac{a}{b}``), optionally followed by a unit (``"14 cm"``, ``"45°"``, ``"3.85米"``).

    Returns ``None`` if ``s`` is not a single number. Never evaluates a power tower or a huge literal.
    """
    s = to_text(s)
    if len(s) > MAX_ANSWER_CHARS:
        return None
    s = unicodedata.normalize("NFKC", s)
    s = clean_span(s)
    s = _DEGREE.sub("", s)
    s = _APPROX.sub("", s).strip()
    s = _CURRENCY.sub("", s).strip()
    percent = False
    if s.endswith("%"):
        percent, s = True, s[:-1].strip()
    elif re.search(r"\s*percent(age)?( points?)?$", s, re.I):
        percent, s = True, re.sub(r"\s*percent(age)?( points?)?$", "", s, flags=re.I)
    s = s.strip()
    if not s:
        return None
    m = _SCI.match(s)
    if m:
        mant = _to_float(m.group(1))
        exp = int((m.group(2) or m.group(3)).replace("−", "-"))
        if mant is None:
            return None
        try:
            val = mant * 10.0**exp
        except OverflowError:
            val = math.copysign(math.inf, mant)
        return Number(val, percent, s)
    for rx in (_FRAC, _FRAC_SHORT):
        m = rx.match(s)
        if m:
            num, den = _to_float(m.group(2)), _to_float(m.group(3))
            if num is None or den in (None, 0.0):
                return None
            sign = -1.0 if m.group(1) in ("-", "−") else 1.0
            return Number(sign * num / den, percent, s)
    m = _SLASH.match(s)
    if m:
        num, den = _to_float(m.group(1)), _to_float(m.group(2))
        if num is None or den in (None, 0.0):
            return None
        return Number(num / den, percent, s)
    m = _NUMBER_RE.match(s)
    if not m:
        return None
    rest = s[m.end() :].strip()
    if rest:
        if not allow_unit or not _UNIT_TAIL.match(rest) or len(rest) > 30:
            return None
        if rest.startswith("%"):
            percent = True
    val = _to_float(m.group(0))
    if val is None:
        return None
    return Number(val, percent, m.group(0).replace(",", "").replace("−", "-").lstrip("+"))


def numbers_in(s: str, limit: int = 200) -> list[str]:
    """Number tokens in ``s`` in order (at most ``limit``), thousands separators removed."""
    out = []
    for m in _NUMBER_RE.finditer(s):
        tok = m.group(0)
        # a "+" or "-" glued to a previous word/number is an operator, not a sign: "41-11" -> 41, 11
        if tok[0] in "+-−" and m.start() > 0 and (s[m.start() - 1].isalnum() or s[m.start() - 1] in ")]}"):
            tok = tok[1:]
        out.append(tok.replace(",", "").replace("−", "-").lstrip("+"))
        if len(out) >= limit:
            break
    return out
