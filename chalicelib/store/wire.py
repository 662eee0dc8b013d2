"""A botocore response parser that hands DynamoDB read results over as their JSON.

botocore parses every response by walking the operation's output shape node by node
(for a Query page of 300 items x 11 attributes: ~10,000 shape visits, ~30 us per item,
a tenth of an export's CPU). For the read operations below, the shape walk changes
nothing but binary attributes (base64 text -> bytes): the JSON document already is the
parsed result. So their bodies are ``json.loads``-ed and returned as they are, unless
they might hold a binary value (then botocore's own walk runs: exact either way).
Errors and every other operation are parsed by botocore as before.
"""

from __future__ import annotations

from typing import Any, Final

from botocore import parsers

from chalicelib.library_pins import require_version

# The overrides below replace botocore's private ``_handle_json_body`` and call its
# private ``_parse_body_as_json`` and ``_defaults``: written against exactly this release.
PINNED_BOTOCORE: Final = "1.44.8"

# botocore's typing stubs leave out the parser internals overridden here.
_JSONParser: Any = parsers.JSONParser
_ResponseParserFactory: Any = parsers.ResponseParserFactory

READ_OUTPUTS: Final = frozenset(
    {"QueryOutput", "ScanOutput", "GetItemOutput", "BatchGetItemOutput", "TransactGetItemsOutput"}
)


def might_hold_binary(body: bytes) -> bool:
    """True unless ``body`` surely holds no B / BS value. Inside a JSON string a quote is
    escaped, so an unescaped ``"B"`` is a key or a whole string "B": either way this
    errs on the safe side."""
    return b'"B"' in body or b'"BS"' in body


class WireJSONParser(_JSONParser):
    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        if shape is not None and shape.name in READ_OUTPUTS and not might_hold_binary(raw_body):
            return self._parse_body_as_json(raw_body)
        return super()._handle_json_body(raw_body, shape)


class WireParserFactory(_ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return WireJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


def use_wire_parser(session: Any) -> None:
    """Clients built by ``session`` from now on parse DynamoDB reads as above."""
    require_version("botocore", PINNED_BOTOCORE, "chalicelib/store/wire.py")
    session.register_component("response_parser_factory", WireParserFactory())
