"""Run a program-of-thought response the way MathVista's pipeline does — without executing untrusted code.

MathVista's ``generate_response.py`` runs a code response with ``exec`` and stores what it printed as
``execution``; the extractor then reads that output. :func:`run_program` reproduces the printed output for the
programs such responses contain (assignments, arithmetic, ``math`` functions, lists, ``if``/``for`` over
``range``, ``print``) with a small interpreter over Python's ``ast``: no ``exec``, no imports beyond the
``math`` namespace, no attribute access other than ``math.*``, a step budget and bounded numbers. Anything it
does not know gives ``None`` (the caller falls back to reading the code as text).
"""

from __future__ import annotations

import ast
import math
import re
import time
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

_MAX_STEPS = 20_000
_MAX_WORK = 2_000_000  # elements that builtins (sum, sorted, min, len, str, ...) may walk over, in all
_MAX_SECONDS = 1.0  # wall-clock per program
_MAX_SIZE = 10_000  # elements of a list / tuple, characters of a string
_MAX_FORMAT_WIDTH = 1_000  # width or precision in a format spec (f"{x:500000000}" would allocate 0.5 GB)
_MAX_ABS = 1e100
_MAX_CODE = 8_000

_MATH = MappingProxyType(
    {
        name: getattr(math, name)
        for name in (
            "sqrt",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "atan2",
            "radians",
            "degrees",
            "log",
            "log10",
            "log2",
            "exp",
            "floor",
            "ceil",
            "fabs",
            "hypot",
            "factorial",
            "comb",
            "perm",
            "gcd",
            "isclose",
            "pi",
            "e",
            "inf",
        )
    }
)
_BUILTINS: Mapping[str, Any] = MappingProxyType(
    {
        "abs": abs,
        "round": round,
        "int": int,
        "float": float,
        "min": min,
        "max": max,
        "sum": sum,
        "len": len,
        "str": str,
        "range": range,
        "sorted": sorted,
        "list": list,
        "tuple": tuple,
        "bool": bool,
        "enumerate": enumerate,
        "zip": zip,
        "pow": None,  # pow is checked like **
    }
)


class _Unsupported(Exception):
    pass


class _Interpreter:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {"math": _MATH, "pi": math.pi}
        self.out: list[str] = []
        self.steps = 0
        self.work = 0
        self.printed = 0
        self.deadline = time.monotonic() + _MAX_SECONDS

    def tick(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _Unsupported("step budget")
        if not self.steps % 256 and time.monotonic() > self.deadline:
            raise _Unsupported("time budget")

    def charge(self, args: list[Any]) -> None:
        """A builtin walks over its sized arguments: count their elements against the work budget."""
        for a in args:
            if isinstance(a, range | list | tuple | str | dict):
                self.work += len(a)
        if self.work > _MAX_WORK:
            raise _Unsupported("work budget")
        if time.monotonic() > self.deadline:
            raise _Unsupported("time budget")

    # ------------------------------------------------------------------ statements
    def run(self, body: list[ast.stmt]) -> None:
        for st in body:
            self.stmt(st)

    def stmt(self, st: ast.stmt) -> None:
        self.tick()
        if isinstance(st, ast.Expr):
            self.expr(st.value)
        elif isinstance(st, ast.Assign):
            value = self.expr(st.value)
            for target in st.targets:
                self.assign(target, value)
        elif isinstance(st, ast.AugAssign):
            if not isinstance(st.target, ast.Name):
                raise _Unsupported("augmented target")
            self.env[st.target.id] = self.binop(st.op, self.name(st.target.id), self.expr(st.value))
        elif isinstance(st, ast.AnnAssign) and st.value is not None:
            self.assign(st.target, self.expr(st.value))
        elif isinstance(st, ast.Import | ast.ImportFrom):
            names = [a.name for a in st.names]
            mod = getattr(st, "module", None)
            if isinstance(st, ast.ImportFrom):
                if mod != "math":
                    raise _Unsupported("import")
                for a in st.names:
                    if a.name == "*":
                        self.env.update(_MATH)
                    elif a.name in _MATH:
                        self.env[a.asname or a.name] = _MATH[a.name]
                    else:
                        raise _Unsupported("import")
            elif names != ["math"]:
                raise _Unsupported("import")
            else:
                self.env[st.names[0].asname or "math"] = _MATH
        elif isinstance(st, ast.If):
            self.run(st.body if self.expr(st.test) else st.orelse)
        elif isinstance(st, ast.For):
            items = self.expr(st.iter)
            if not isinstance(items, range | list | tuple | enumerate | zip) or st.orelse:
                raise _Unsupported("for")
            for item in items:
                self.assign(st.target, item)
                self.run(st.body)
        elif isinstance(st, ast.Pass):
            pass
        else:
            raise _Unsupported(type(st).__name__)

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            values = list(value)
            if len(values) != len(target.elts):
                raise _Unsupported("unpack")
            for t, v in zip(target.elts, values):
                self.assign(t, v)
        else:
            raise _Unsupported("assign target")

    # ------------------------------------------------------------------ expressions
    def name(self, n: str) -> Any:
        if n in self.env:
            return self.env[n]
        if n in _BUILTINS and _BUILTINS[n] is not None:
            return _BUILTINS[n]
        raise _Unsupported(f"name {n}")

    def expr(self, e: ast.expr) -> Any:
        self.tick()
        if isinstance(e, ast.Constant):
            if isinstance(e.value, int | float | str | bool) or e.value is None:
                return e.value
            raise _Unsupported("constant")
        if isinstance(e, ast.Name):
            return self.name(e.id)
        if isinstance(e, ast.BinOp):
            return self.binop(e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.UnaryOp):
            v = self.expr(e.operand)
            if isinstance(e.op, ast.USub):
                return -v
            if isinstance(e.op, ast.UAdd):
                return +v
            if isinstance(e.op, ast.Not):
                return not v
            raise _Unsupported("unary")
        if isinstance(e, ast.Compare):
            left = self.expr(e.left)
            for op, right_e in zip(e.ops, e.comparators):
                right = self.expr(right_e)
                ok = {
                    ast.Lt: lambda a, b: a < b,
                    ast.LtE: lambda a, b: a <= b,
                    ast.Gt: lambda a, b: a > b,
                    ast.GtE: lambda a, b: a >= b,
                    ast.Eq: lambda a, b: a == b,
                    ast.NotEq: lambda a, b: a != b,
                }.get(type(op))
                if ok is None:
                    raise _Unsupported("compare")
                if not ok(left, right):
                    return False
                left = right
            return True
        if isinstance(e, ast.BoolOp):
            vals = [self.expr(v) for v in e.values]
            return all(vals) if isinstance(e.op, ast.And) else any(vals)
        if isinstance(e, ast.IfExp):
            return self.expr(e.body) if self.expr(e.test) else self.expr(e.orelse)
        if isinstance(e, ast.List | ast.Tuple):
            vals = [self.expr(x) for x in e.elts]
            if len(vals) > _MAX_SIZE:
                raise _Unsupported("size")
            return vals if isinstance(e, ast.List) else tuple(vals)
        if isinstance(e, ast.Subscript):
            base = self.expr(e.value)
            if isinstance(e.slice, ast.Slice):
                raise _Unsupported("slice")
            return base[self.expr(e.slice)]
        if isinstance(e, ast.Attribute):
            base = self.expr(e.value)
            if base is _MATH and e.attr in _MATH:
                return _MATH[e.attr]
            raise _Unsupported("attribute")
        if isinstance(e, ast.JoinedStr):
            parts = []
            for v in e.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    spec = self.expr(v.format_spec) if v.format_spec is not None else ""
                    if any(int(n) > _MAX_FORMAT_WIDTH for n in re.findall(r"\d+", str(spec))):
                        raise _Unsupported("format width")
                    parts.append(format(self.expr(v.value), spec))
                else:
                    raise _Unsupported("f-string")
            return self._bound("".join(parts))
        if isinstance(e, ast.Call):
            return self.call(e)
        raise _Unsupported(type(e).__name__)

    def call(self, e: ast.Call) -> Any:
        if e.keywords and not (isinstance(e.func, ast.Name) and e.func.id == "print"):
            raise _Unsupported("keywords")
        args = [self.expr(a) for a in e.args]
        if isinstance(e.func, ast.Name) and e.func.id == "print":
            sep = " "
            for kw in e.keywords:
                if kw.arg == "sep":
                    sep = str(self.expr(kw.value))
                elif kw.arg != "end":
                    raise _Unsupported("print keyword")
            self.out.append(sep.join(str(a) for a in args))
            self.printed += len(self.out[-1])
            if self.printed > _MAX_SIZE * 10:
                raise _Unsupported("output size")
            return None
        if isinstance(e.func, ast.Name) and e.func.id == "pow":
            if len(args) != 2:
                raise _Unsupported("pow")
            return self.binop(ast.Pow(), args[0], args[1])
        fn = self.expr(e.func)
        if not callable(fn) or fn is _MATH:
            raise _Unsupported("call")
        if fn in (math.factorial, math.comb, math.perm) and any(
            abs(a) > 1000 for a in args if isinstance(a, int)
        ):
            raise _Unsupported("size")
        if fn is range and (len(args) > 3 or any(abs(a) > 100_000 for a in args if isinstance(a, int))):
            raise _Unsupported("range")
        self.charge(args)
        return self._bound(fn(*args))

    def binop(self, op: ast.operator, a: Any, b: Any) -> Any:
        if isinstance(op, ast.Pow):
            if isinstance(b, int | float) and abs(b) > 1000:
                raise _Unsupported("exponent")
            if (
                isinstance(a, int)
                and isinstance(b, int)
                and b > 0
                and abs(a) > 1
                and b * math.log2(abs(a)) > 332
            ):
                raise _Unsupported("exponent")
            return self._bound(a**b)
        if isinstance(op, ast.Mult) and (
            isinstance(a, str | list | tuple) or isinstance(b, str | list | tuple)
        ):
            raise _Unsupported("sequence repetition")  # (0,) * (3 * 10**8) would allocate 2.3 GB
        if (
            isinstance(op, ast.Add)
            and isinstance(a, str | list | tuple)
            and isinstance(b, str | list | tuple)
        ) and len(a) + len(b) > _MAX_SIZE:
            raise _Unsupported("size")
        fns = {
            ast.Add: lambda x, y: x + y,
            ast.Sub: lambda x, y: x - y,
            ast.Mult: lambda x, y: x * y,
            ast.Div: lambda x, y: x / y,
            ast.FloorDiv: lambda x, y: x // y,
            ast.Mod: lambda x, y: x % y,
        }
        fn = fns.get(type(op))
        if fn is None:
            raise _Unsupported("operator")
        return self._bound(fn(a, b))

    @staticmethod
    def _bound(v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) > _MAX_ABS:
            raise _Unsupported("number too large")
        if isinstance(v, str | list | tuple | dict) and len(v) > _MAX_SIZE:
            raise _Unsupported("size")
        return v


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S | re.I)


def program_of(response: str) -> str | None:
    """The Python program a program-of-thought response holds: its fenced ```python block (the last one), or
    the whole response when it parses as Python and prints something; ``None`` otherwise."""
    blocks = _FENCE.findall(response)
    code = blocks[-1] if blocks else response
    if "print" not in code or len(code) > _MAX_CODE:
        return None
    return code


def run_program(code: str) -> str | None:
    """What ``code`` prints (stripped, as MathVista's ``evaluate_code`` captures it), or ``None`` if the code does
    not parse, uses anything outside the interpreter's subset, raises, or prints nothing."""
    tree = _parse(code)
    if tree is None:
        return None
    interp = _Interpreter()
    try:
        interp.run(tree.body)
    except (_Unsupported, ArithmeticError, TypeError, ValueError, IndexError, KeyError, RecursionError):
        if not interp.out:
            return None
    out = "\n".join(interp.out).strip()
    return out or None


def program_output(response: str) -> str | None:
    """The output of a program-of-thought response: one with a fenced ```python block that prints (MathVista
    scores what such a program prints, not the prose around it), or a response that *is* Python (it parses);
    ``None`` for anything else."""
    code = program_of(response)
    if code is None:
        return None
    if not _FENCE.search(response) and _parse(response) is None:
        return None
    return run_program(code)


def _parse(code: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # "invalid decimal literal" and the like, for prose that is not Python
        try:
            return ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return None
