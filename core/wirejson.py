"""JSON from clients, read within bounds: the REST parser and the socket consumer both use `loads`.

Python's `json` recurses once per level of nesting, so a 60,000-bracket body raises RecursionError
(a 500 over REST, a crashed socket); it reads `1e400` as infinity and `NaN` as a number PostgreSQL
and JSON cannot store; and it reads whole numbers of any size, which a 32-bit column refuses on
save. Here each of those is a `MalformedJSON` (a ValueError) before any of it reaches the code:

- nesting deeper than `MAX_DEPTH` is found by a scan of the brackets outside strings, before the
  parse (a regular expression does the scanning, so it costs little and never recurses);
- `NaN`, `Infinity` and numbers too large for a float are refused;
- whole numbers outside PostgreSQL's `integer` (-2147483648 .. 2147483647) are refused, so no
  request can ask for a row id, queue number or count the database cannot hold;
- strings with a lone UTF-16 surrogate (`"\\ud800"`), which no database text column accepts.
"""

import json
import re
from typing import Any

MAX_DEPTH = 32  # the API's bodies and frames nest two or three levels
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)

# A whole string (possessive, so an unterminated one ends the scan instead of being retried from
# every later quote), or one bracket. An unterminated string makes the text invalid anyway: the
# parser stops there, no deeper than the scan counted.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class MalformedJSON(ValueError):
    """The text is not JSON the API accepts; the message says why, for the client."""


def _check_depth(text: str, limit: int) -> None:
    depth = 0
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                raise MalformedJSON(f"JSON nested deeper than {limit} levels.")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str):
    raise MalformedJSON(f"{name} is not a number the API accepts; numbers must be finite.")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise MalformedJSON(f"{text[:40]} is too large; numbers must be finite.")
    return value


def _bounded_int(text: str) -> int:
    # Checked on the digits first: int() of a very long number is itself slow.
    digits = text.lstrip("-")
    value = int(text) if len(digits) <= 10 else None
    if value is None or not MIN_INT <= value <= MAX_INT:
        raise MalformedJSON(f"Whole numbers must be between {MIN_INT} and {MAX_INT}.")
    return value


def _check_strings(value: Any) -> None:
    """Refuse a lone surrogate in any string or key (an iterative walk: the depth is bounded already)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedJSON("Strings must be valid Unicode (a lone surrogate escape was sent).") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a client's JSON within the bounds above; raises MalformedJSON (a ValueError) otherwise."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJSON("JSON must be UTF-8.") from None
    elif isinstance(data, str):
        text = data
    else:
        raise MalformedJSON("No JSON was sent.")
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except MalformedJSON:
        raise
    except RecursionError:  # not reached past the depth check; kept so that nothing can escape as a 500
        raise MalformedJSON(f"JSON nested deeper than {max_depth} levels.") from None
    except ValueError as exc:
        raise MalformedJSON(f"Not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_strings(value)
    return value
