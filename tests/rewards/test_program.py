"""Program-of-thought responses: MathVista runs them and scores what they print; mssr reproduces the printed
output with a restricted interpreter (no exec) and refuses anything outside it."""

from __future__ import annotations

import time

import pytest

from mssr.rewards import official_rules as rules
from mssr.rewards import verify
from mssr.rewards.program import program_output, run_program


@pytest.mark.parametrize(
    ("code", "printed"),
    [
        ("a = 3\nb = 4\nprint(a * b + 2)", "14"),
        ("import math\nc = math.sqrt(3**2 + 4**2)\nprint(c)", "5.0"),
        ("from math import pi\nr = 2\nprint(round(pi * r ** 2, 2))", "12.57"),
        ("total = 0\nfor i in range(1, 5):\n    total += i\nprint(total)", "10"),
        ("x = [3, 9, 4]\nprint(max(x) - min(x))", "6"),
        ("v = 7\nprint(f'The answer is {v}')", "The answer is 7"),
        ("a, b = 10, 4\nif a > b:\n    ans = 'A'\nelse:\n    ans = 'B'\nprint(ans)", "A"),
        ("print(1)\nprint(1 / 0)", "1"),  # output printed before an exception is kept, like evaluate_code
    ],
)
def test_run_program(code: str, printed: str) -> None:
    assert run_program(code) == printed


@pytest.mark.parametrize(
    "code",
    [
        "import os\nprint(os.getcwd())",
        "print(open('/etc/passwd').read())",
        "print(__import__('os'))",
        "print(9 ** 9 ** 9)",
        "print('x' * 10**9)",
        "while True:\n    pass",
        "for i in range(10**9):\n    pass\nprint(1)",
        "print((1).__class__)",
        "def f():\n    return 1\nprint(f())",
        "x = 1",  # prints nothing
        "not python (",
    ],
)
def test_run_program_refuses_what_it_does_not_know(code: str) -> None:
    t = time.perf_counter()
    assert run_program(code) is None
    assert time.perf_counter() - t < 1.0


def test_program_output_only_for_programs() -> None:
    fenced = "```python\na = 47\nb = 1141\nanswer = b - 3 * a\nprint(answer)\n```\nOutput: 1000"
    assert program_output(fenced) == "1000"
    assert program_output("# code\nx = 2\nprint(x * 3)") == "6"
    assert program_output("The area is 6, so print it: 6.") is None  # prose, not Python
    assert program_output("```\nW = -\\dfrac{1}{2}kx^2\n```\nSo W = 3.") is None  # a formula block, no print


def test_program_output_rule_in_official_mode() -> None:
    r = "```python\na = 47\nb = 1141\nc = 3\nanswer = b - c * a\nprint(answer)\n```"
    assert verify(r, "1000", answer_type="integer", mode="official").correct
    off = rules.RuleSet.without(["program_output"])
    assert not verify(r, "1000", answer_type="integer", mode="official", rules=off).correct
    mc = "```python\nprint('B')\n```"
    assert verify(mc, "8/11", choices=["3/11", "8/11", "6/11"], mode="official").correct


@pytest.mark.parametrize(
    "code",
    [
        "x = (0,) * (3 * 10**8)\nprint(len(x))",  # 2.3 GB before
        "print(f'{1:500000000}')",  # 0.5 GB before
        "t = 0\nfor i in range(20000):\n    t = t + sum(range(100000))\nprint(t)",  # 50 s before
        "x = tuple(range(100000))\nprint(len(x))",
        "s = 'ab'\nfor i in range(12):\n    s = s + s\nprint(s)",
        "for i in range(20000):\n    print('x' * 1 if False else 'y' + str(10**90))",
    ],
)
def test_programs_are_bounded_in_memory_and_time(code):
    import tracemalloc

    tracemalloc.start()
    t = time.perf_counter()
    run_program(code)
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert elapsed < 5.0, elapsed  # the interpreter's own deadline is 1 s of wall-clock
