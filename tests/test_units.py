import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling_planner.errors import ScalePlanError
from scaling_planner.units import PF_DAY, SUFFIXES, fmt_count, parse_positive, parse_quantity


@pytest.mark.parametrize("text,value", [
    ("1.3B", 1.3e9), ("350M", 350e6), ("2.5T", 2.5e12), ("3e21", 3e21), ("1,000,000", 1e6),
    ("7e9", 7e9), ("12k", 12e3), (" 1.5 G ", 1.5e9), ("1P", 1e15), (".5M", 5e5), ("42", 42.0),
    ("1,234.5", 1234.5), ("12,345", 12345.0), ("1,300M", 1.3e9), ("-1,000", -1000.0), ("+2.5e3k", 2.5e6),
    ("1_000_000", 1e6), ("999", 999.0), ("5.", 5.0), (7, 7.0), (2.5, 2.5),
])
def test_parse_quantity_examples(text, value):
    assert parse_quantity(text) == pytest.approx(value, rel=1e-12)


def test_pf_day_is_kaplan_definition():
    # Kaplan et al. 2020 Sec. 2.1: 1 PF-day = 1e15 * 24 * 3600 = 8.64e19 FLOPs
    assert PF_DAY == 8.64e19


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "3X", "", "B", "1e", "--1", ".", "e5", "1.3BB", "١٢", True])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ValueError, match="not a number"):
        parse_quantity(bad)


# The issue: every comma used to be dropped, so "1,5e23" became 1.5e24 and a loss "3,4521" became 34521.
@pytest.mark.parametrize("bad,fix", [
    ("1,5e23", "use a dot as the decimal separator: 1.5e23"),
    ("3,4521", "use a dot as the decimal separator: 3.4521"),
    ("1,00", "use a dot as the decimal separator: 1.00"),
    (",5", "use a dot as the decimal separator: .5"),
    ("1,5B", "use a dot as the decimal separator: 1.5B"),
    ("1.000,5", "no thousands dots: 1000.5"),
    ("1,000,00", "groups of three digits"),
    ("1,2,3", "groups of three digits"),
    ("1_000,000", "groups of three digits"),
    ("1,500e20", "ambiguous; write 1500e20 (or, for a decimal comma, 1.500e20)"),
    ("1_00", "underscores may only separate groups of three digits"),
    ("1.5_0", "underscores"),
    ("1 000 000", "remove the spaces: 1000000"),
])
def test_bad_commas_are_errors_with_the_fix(bad, fix):
    with pytest.raises(ValueError) as e:
        parse_quantity(bad)
    msg = str(e.value)
    assert repr(bad) in msg and fix in msg
    assert "\n" not in msg


def test_loss_values_take_no_thousands_separator():
    assert parse_quantity("3,452") == 3452.0  # a valid grouping for a count...
    with pytest.raises(ValueError, match=re.escape("use a dot as the decimal separator: 3.452")):
        parse_quantity("3,452", grouping=False)  # ...but never for a loss
    assert parse_quantity("3.452", grouping=False) == 3.452


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1e308P", float("nan"),
                                 float("inf")])
def test_non_finite_is_an_error(bad):
    with pytest.raises(ValueError, match="finite"):
        parse_quantity(bad)


@pytest.mark.parametrize("bad", ["-5", "0", "nan", "inf", "x", "1,5e23"])
def test_parse_positive_errors_name_the_option(bad):
    with pytest.raises(ScalePlanError, match="--flops") as e:
        parse_positive(bad, "--flops")
    assert repr(bad) in str(e.value)


def test_parse_positive_decimal_comma_message():
    with pytest.raises(ScalePlanError) as e:
        parse_positive("1,5e23", "--flops")
    assert str(e.value) == "--flops: '1,5e23' is not a number: use a dot as the decimal separator: 1.5e23"


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), st.sampled_from(sorted(SUFFIXES)))
def test_suffix_roundtrip(x, suf):
    text = f"{x!r}{suf}"
    assert math.isclose(parse_quantity(text), x * SUFFIXES[suf], rel_tol=1e-12)


@given(st.integers(min_value=0, max_value=10**15))
def test_thousands_separators(n):
    assert parse_quantity(f"{n:,}") == float(n)
    assert parse_quantity(f"{n:_}") == float(n)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e15, allow_nan=False), st.integers(0, 6),
       st.sampled_from(sorted(SUFFIXES)), st.sampled_from(["", " "]))
def test_grouped_float_with_suffix_roundtrips(x, places, suf, space):
    text = f"{x:,.{places}f}{space}{suf}"
    assert parse_quantity(text) == float(f"{x:.{places}f}") * SUFFIXES[suf]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from([1, 2, 4, 5]),
       st.sampled_from(["", "e3", "e-2", "M"]))
def test_decimal_comma_always_raises_with_the_dotted_fix(x, places, tail):
    dotted = f"{x:.{places}f}{tail}"
    text = dotted.replace(".", ",")
    with pytest.raises(ValueError) as e:
        parse_quantity(text)
    assert "use a dot as the decimal separator" in str(e.value)
    assert dotted in str(e.value)


def _valid_grouping(int_part: str, sep: str) -> bool:
    groups = int_part.split(sep)
    return len(groups) > 1 and 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789", min_size=1, max_size=10), st.sets(st.integers(0, 10), max_size=4),
       st.sampled_from([",", "_"]), st.sampled_from(["", ".5", ".25"]), st.sampled_from(["", "e3"]),
       st.sampled_from(["", "k", "B"]))
def test_separator_positions(digits, cuts, sep, frac, exp, suf):
    """A separator is accepted only as grouping in threes (and a comma never with an exponent): otherwise an error,
    never a silently different number."""
    cuts = sorted(c for c in cuts if 0 <= c <= len(digits))
    pieces, last = [], 0
    for c in cuts:
        pieces.append(digits[last:c])
        last = c
    pieces.append(digits[last:])
    int_part = sep.join(pieces)
    text = int_part + frac + exp + suf
    ok = sep not in int_part or (_valid_grouping(int_part, sep) and not (sep == "," and exp))
    if ok:
        assert parse_quantity(text) == float(digits + frac + exp) * SUFFIXES[suf]
    else:
        with pytest.raises(ValueError):
            parse_quantity(text)


_ALPHABET = "0123456789,._eE+- kKmMbBgGtTpPnaifxy\t"


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(_ALPHABET, max_size=12), st.text(max_size=8)))
def test_random_strings_parse_to_finite_or_raise_value_error(text):
    try:
        v = parse_quantity(text)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(v, float) and math.isfinite(v)
    if "," in text:  # a comma was accepted only as a thousands separator
        assert re.search(r"(?<![0-9,])[0-9]{1,3}(,[0-9]{3})+(?![0-9,])", text)


def test_fmt_count():
    assert fmt_count(2.9446e10) == "29.4B"
    assert fmt_count(5.66e11) == "566B"
    assert fmt_count(None) == "—"
