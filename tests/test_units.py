import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling_planner.errors import ScalePlanError
from scaling_planner.units import PF_DAY, SUFFIXES, fmt_count, parse_positive, parse_quantity


@pytest.mark.parametrize("text,value", [
    ("1.3B", 1.3e9), ("350M", 350e6), ("2.5T", 2.5e12), ("3e21", 3e21), ("1,000,000", 1e6),
    ("7e9", 7e9), ("12k", 12e3), (" 1.5 G ", 1.5e9), ("1P", 1e15), (".5M", 5e5), ("42", 42.0),
])
def test_parse_quantity_examples(text, value):
    assert parse_quantity(text) == pytest.approx(value, rel=1e-12)


def test_pf_day_is_kaplan_definition():
    # Kaplan et al. 2020 Sec. 2.1: 1 PF-day = 1e15 * 24 * 3600 = 8.64e19 FLOPs
    assert PF_DAY == 8.64e19


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "3X", "", "B", "1e", "--1"])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


@pytest.mark.parametrize("bad", ["-5", "0", "nan", "inf", "x"])
def test_parse_positive_errors_name_the_option(bad):
    with pytest.raises(ScalePlanError, match="--flops"):
        parse_positive(bad, "--flops")


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), st.sampled_from(sorted(SUFFIXES)))
def test_suffix_roundtrip(x, suf):
    text = f"{x!r}{suf}"
    assert math.isclose(parse_quantity(text), x * SUFFIXES[suf], rel_tol=1e-12)


@given(st.integers(min_value=0, max_value=10**15))
def test_thousands_separators(n):
    assert parse_quantity(f"{n:,}") == float(n)


def test_fmt_count():
    assert fmt_count(2.9446e10) == "29.4B"
    assert fmt_count(5.66e11) == "566B"
    assert fmt_count(None) == "—"
