"""Fuzzed equation strings: random and adversarial text ends in a PDESystem or one EquationParseError
(a PDEForgeError), never another exception, never execution, within a small memory bound.

Fixed seed (``derandomize``) and a bounded number of examples keep the suite fast and repeatable.
"""

import os
import sys
import tracemalloc

import pdeforge as pf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdeforge.errors import EquationParseError, PDEForgeError

#: What one parse may allocate at its peak (tracemalloc: Python and SymPy objects).
MEMORY_BOUND = 64 * 2**20

FUZZ = settings(derandomize=True, max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

TOKENS = [
    "u", "v", "x", "t", "k", "pi", "E", "laplace", "grad", "div", "d", "sin", "exp", "log", "sqrt", "Piecewise",
    "max", "vec", "+", "-", "*", "/", "**", "(", ")", ",", " ", "<", ">=", "and", "or", "not", "True",
    "0", "1", "2", "0.5", "1e308", "1e999", "9**9**9", "(2**1000)**1000", "9" * 5000, "10**1000", "2**-1074",
    ".", "[", "]", ":", "^", "=", ";", "'", '"', "\\", "\n", "\x00", "lambda", "__class__", "__import__",
    "__builtins__", "os", "eval", "exec", "open", "import", "_", "@", "{", "}", "if", "else", "for", "in",
    "ü", "ｕ", "𝑢", "\u202e", "∇", "²",
]

ADVERSARIAL = [
    "9**9**9", "(2**1000)**1000", "(u**1000)**1000", "2**1000*2**1000*2**1000*2**1000", "u" + "+u" * 9999,
    "-" * 19999 + "u", "(" * 300 + "u" + ")" * 300, "sin(" * 150 + "u" + ")" * 150, "u**" * 3000 + "u",
    "not " * 4000 + "u", "1" * 4301, "1" * 1001, "1e999", "u.__class__.__mro__", "__import__('os').system('true')",
    "().__class__.__bases__[0].__subclasses__()", "laplace(u)**1000", "exp(exp(exp(exp(1000))))",
    "(lambda: 0)()", "[u for u in 'ab']", "f'{u}'", "u if u else v", "u; import os", "u\x00", "ｕ + 1",
    "Piecewise((1, u > 2**10000), (0, True))", "u" * 20001, "(u+v)**1000 * (u-v)**1000",
]

parse_strings = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
    st.text(max_size=200),
    st.sampled_from(ADVERSARIAL),
)


class _NoExecution:
    """Records audit events that would mean user text was executed or a process was started:
    ``exec`` of code that comes from no file, outside an import (importing a module executes it,
    and its dataclasses exec the methods they generate), and process or shell starts."""

    EVENTS = ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "builtins.input")
    active = False
    seen: list = []

    @classmethod
    def hook(cls, event, args):
        if not cls.active:
            return
        if event == "exec" and not os.path.isfile(getattr(args[0], "co_filename", "")) and not _importing():
            cls.seen.append(f"exec of {getattr(args[0], 'co_filename', '?')}")
        elif event in cls.EVENTS:
            cls.seen.append(event)


def _importing() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


sys.addaudithook(_NoExecution.hook)  # audit hooks cannot be removed; it is inert unless active


def _system_or_parse_error(text: str) -> None:
    tracemalloc.start()
    _NoExecution.active, _NoExecution.seen = True, []
    try:
        system = pf.PDESystem({"u": text, "v": "0"}, params={"k": 1.0}, domain=[(0, 1)], bcs="periodic")
    except PDEForgeError as exc:
        assert "\n" not in str(exc).strip() or isinstance(exc, EquationParseError)
    else:
        assert set(system.fields) == {"u", "v"}
    finally:
        _NoExecution.active = False
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert _NoExecution.seen == [], f"{text[:60]!r} triggered {_NoExecution.seen}"
    assert peak < MEMORY_BOUND, f"{text[:60]!r} allocated {peak / 2**20:.0f} MiB"


@FUZZ
@given(parse_strings)
def test_random_and_adversarial_equations_end_cleanly(text):
    _system_or_parse_error(text)


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_each_adversarial_equation_ends_cleanly(text):
    _system_or_parse_error(text)


@pytest.mark.parametrize("text, message", [
    ("9**9**9", "exponent larger than 1000"),
    ("(2**1000)**1000", "more than 1000 digits"),
    ("(u**1000)**1000", "exponent larger than 1000"),
    ("1" * 1001, "more than 1000 digits"),
    ("1e999", "too large for a float"),
    ("u" + "+u" * 9999, "too deeply nested or too large"),
    ("sin(" * 101 + "u" + ")" * 101, "nested more than 100 levels deep"),
    ("u.__class__", "attribute access"),
])
def test_pathological_inputs_are_refused_by_name(text, message):
    with pytest.raises(EquationParseError, match=message):
        pf.PDESystem({"u": text}, domain=[(0, 1)], bcs="periodic")


def test_long_sums_within_the_limits_still_parse():
    # a sum of many terms is one level of nesting, not one per term
    system = pf.PDESystem({"u": " + ".join(f"{i}*u" for i in range(150))}, domain=[(0, 1)], bcs="periodic")
    assert str(system.rhs["u"]) == f"{sum(range(150))}*u(x)"
