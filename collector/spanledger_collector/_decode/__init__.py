"""Decode: OTLP bytes (protobuf or JSON) into the rows the store keeps and the usage the processors price.

``_otlp`` reads the wire formats; ``_usage`` is the Python reference of usage extraction; ``_speedups`` (C,
optional, built at install) decodes the same rows several times faster and declines whatever it does not
handle exactly as the reference does.
"""

from ._otlp import (
    AttributeValue,
    AttributeValues,
    DecodeError,
    JsonMappingError,
    any_value,
    attribute_dict,
    double_attribute,
    message_to_otlp_json,
    otlp_json_to_message,
    parse_skinny_traces,
    string_attribute,
)
from ._usage import MAX_TOKENS, NUMBER_TEXT, SPEEDUPS, DecodedTraces, LlmCall, decode_traces, decode_traces_python

__all__ = [
    "MAX_TOKENS",
    "NUMBER_TEXT",
    "SPEEDUPS",
    "AttributeValue",
    "AttributeValues",
    "DecodeError",
    "DecodedTraces",
    "JsonMappingError",
    "LlmCall",
    "any_value",
    "attribute_dict",
    "decode_traces",
    "decode_traces_python",
    "double_attribute",
    "message_to_otlp_json",
    "otlp_json_to_message",
    "parse_skinny_traces",
    "string_attribute",
]
