"""The API's JSON parser: a body nested deeper than Python's decoder goes is bad JSON (400).

The decoder raises RecursionError past some thousand levels, which DRF's parser lets
through as a server error; such a body is no more than malformed input.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "JSON parse error - the body is nested too deeply."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
