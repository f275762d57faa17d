"""The API's JSON parser: DRF's, reading through core.wirejson's bounds (400, never 500)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from core import wirejson


class BoundedJSONParser(JSONParser):
    """Deep nesting, non-finite numbers and whole numbers past 32 bits are a 400 with the reason."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from None
        try:
            return wirejson.loads(text)
        except wirejson.MalformedJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
