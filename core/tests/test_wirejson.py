import math

import pytest

from core import wirejson


@pytest.mark.parametrize(
    "text",
    [
        "[" * 60_000,
        "[" * 60_000 + "]" * 60_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        "[" * (wirejson.MAX_DEPTH + 1) + "]" * (wirejson.MAX_DEPTH + 1),
    ],
)
def test_deep_nesting_is_refused_before_the_parser_recurses(text):
    with pytest.raises(wirejson.MalformedJSON, match="nested deeper"):
        wirejson.loads(text)


def test_nesting_up_to_the_limit_parses_and_brackets_inside_strings_do_not_count():
    depth = wirejson.MAX_DEPTH
    assert wirejson.loads("[" * depth + "]" * depth) is not None
    assert wirejson.loads(r'{"reason": "[[[[ \" [[[[' + "[" * 100 + '"}')["reason"].startswith("[[[[")


def test_an_unterminated_string_full_of_quotes_is_just_invalid():
    with pytest.raises(wirejson.MalformedJSON, match="Not valid JSON"):
        wirejson.loads('["' + '\\"[' * 30_000)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"doctor": 1e400}', "[-1e400]", '{"x": [1, NaN]}'])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(wirejson.MalformedJSON, match="finite"):
        wirejson.loads(text)


@pytest.mark.parametrize("number", ["2147483648", "-2147483649", "9" * 5000, "-" + "9" * 20])
def test_whole_numbers_past_32_bits_are_refused_wherever_they_are(number):
    with pytest.raises(wirejson.MalformedJSON, match="between -2147483648 and 2147483647"):
        wirejson.loads(f'{{"deep": {{"list": [1, {number}]}}}}')


def test_numbers_within_bounds_parse_as_usual():
    assert wirejson.loads('{"a": 2147483647, "b": -2147483648, "c": 1.5e300, "d": 0.1}') == {
        "a": 2147483647,
        "b": -2147483648,
        "c": 1.5e300,
        "d": 0.1,
    }
    assert math.isfinite(wirejson.loads("1e308"))


@pytest.mark.parametrize("text", [r'"\ud800"', r'{"\udfff": 1}', r'["ok", {"x": ["\ud83d"]}]'])
def test_lone_surrogates_are_refused(text):
    with pytest.raises(wirejson.MalformedJSON, match="Unicode"):
        wirejson.loads(text)


def test_paired_surrogates_and_escaped_backslashes_are_fine():
    assert wirejson.loads(r'"\ud83d\ude00"') == "\U0001f600"
    assert wirejson.loads(r'"\\ud800"') == "\\ud800"


@pytest.mark.parametrize("data", [b"\xff\xfe", None, "", "{", "[1,]"])
def test_not_json_at_all_is_malformed(data):
    with pytest.raises(wirejson.MalformedJSON):
        wirejson.loads(data)
