"""OTLP wire formats: fast trace decoding, the OTLP/JSON mapping, and attribute values.

The collector stores every span's identity (the lineage tree) but needs the attributes of only a few
spans: those that own usage (``spanledger.usage.owner``) or carry a ``spanledger.data.read`` event.
Reading an attribute through the protobuf API costs about a microsecond, so converting every span to
Python objects would cap the collector far below its target rate. Instead the request is parsed with
"skinny" schemas that upb decodes in C:

* the request keeps each span as raw bytes, and a second message reads only the span's header fields;
* a span whose bytes contain one of the keys above (a C substring search) is parsed again with its
  attributes as a ``map<string, bytes>``. That is the wire form of OTLP's ``repeated KeyValue`` (a map
  entry is a message with ``key = 1`` and ``value = 2``, and the last duplicate key wins, as in the SDK),
  so the few keys usage extraction needs are hash lookups in C, and each value stays as its ``AnyValue``
  bytes until :class:`AttributeValues` decodes it. Values repeat across spans (models, providers,
  tenants, regions), so those decodes are cached.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "AttributeValue",
    "AttributeValues",
    "DecodeError",
    "JsonMappingError",
    "any_value",
    "attribute_dict",
    "double_attribute",
    "message_to_otlp_json",
    "otlp_json_to_message",
    "parse_owner_span",
    "parse_skinny_traces",
    "parse_span_event",
    "parse_span_header",
    "string_attribute",
]

AttributeValue = str | bool | int | float | list[Any] | dict[str, Any] | bytes | None

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


_FieldSpec = tuple[str, int, int, bool, str | None]
_PACKAGE = "spanledger_collector.skinny"


def _build_skinny_messages() -> dict[str, type[Message]]:
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="spanledger_collector/skinny_trace.proto", package=_PACKAGE)
    file.syntax = "proto3"

    def add(name: str, fields: list[_FieldSpec], *, attributes_field: int | None = None) -> None:
        message = file.message_type.add(name=name)
        if attributes_field is not None:
            entry = message.nested_type.add(name="AttributesEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
            entry_type = f".{_PACKAGE}.{name}.AttributesEntry"
            fields = [*fields, ("attributes", attributes_field, field.TYPE_MESSAGE, True, entry_type)]
        for field_name, number, kind, repeated, type_name in fields:
            added = message.field.add(
                name=field_name,
                number=number,
                type=kind,  # type: ignore[arg-type]
                label=field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL,
            )
            if type_name:
                added.type_name = type_name

    # Field numbers are those of opentelemetry/proto/trace/v1/trace.proto.
    add("TracesData", [("resource_spans", 1, field.TYPE_MESSAGE, True, f".{_PACKAGE}.ResourceSpans")])
    add(
        "ResourceSpans",
        [
            ("resource", 1, field.TYPE_BYTES, False, None),
            ("scope_spans", 2, field.TYPE_MESSAGE, True, f".{_PACKAGE}.ScopeSpans"),
        ],
    )
    add("ScopeSpans", [("scope", 1, field.TYPE_BYTES, False, None), ("spans", 2, field.TYPE_BYTES, True, None)])
    add("Status", [("message", 2, field.TYPE_STRING, False, None), ("code", 3, field.TYPE_INT32, False, None)])
    add(
        "SpanHeader",
        [
            ("trace_id", 1, field.TYPE_BYTES, False, None),
            ("span_id", 2, field.TYPE_BYTES, False, None),
            ("parent_span_id", 4, field.TYPE_BYTES, False, None),
            ("name", 5, field.TYPE_STRING, False, None),
            ("kind", 6, field.TYPE_INT32, False, None),
            ("start_time_unix_nano", 7, field.TYPE_FIXED64, False, None),
            ("end_time_unix_nano", 8, field.TYPE_FIXED64, False, None),
            ("status", 15, field.TYPE_MESSAGE, False, f".{_PACKAGE}.Status"),
        ],
    )
    add("OwnerSpan", [("events", 11, field.TYPE_BYTES, True, None)], attributes_field=9)
    add(
        "SpanEvent",
        [("time_unix_nano", 1, field.TYPE_FIXED64, False, None), ("name", 2, field.TYPE_STRING, False, None)],
        attributes_field=3,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = ("TracesData", "SpanHeader", "OwnerSpan", "SpanEvent")
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name in names}


_SKINNY = _build_skinny_messages()


def parse_skinny_traces(data: bytes) -> Any:
    """An ``ExportTraceServiceRequest`` with resources and spans left as bytes; raises ``DecodeError``."""
    return _SKINNY["TracesData"].FromString(data)


parse_span_header: Any = _SKINNY["SpanHeader"].FromString
"""Parse only a span's ids, name, kind, times and status from its bytes; raises ``DecodeError``."""

parse_owner_span: Any = _SKINNY["OwnerSpan"].FromString
"""Parse a span's ``attributes`` (a map of key to ``AnyValue`` bytes) and its ``events`` (as bytes)."""

parse_span_event: Any = _SKINNY["SpanEvent"].FromString
"""Parse an event's ``time_unix_nano``, ``name`` and ``attributes`` (a map of key to ``AnyValue`` bytes)."""


class AttributeValues(dict[bytes | None, AttributeValue]):
    """``values[raw]`` decodes ``AnyValue`` bytes (``None``: an absent attribute) to a Python value.

    A dict, so that a repeated value costs one C-level lookup; a miss parses the bytes with the real
    ``AnyValue`` message and is remembered (the dict is emptied when it reaches ``max_entries``).
    """

    def __init__(self, max_entries: int = 16_384) -> None:
        super().__init__({None: None})
        self._max_entries = max_entries

    def __missing__(self, raw: bytes | None) -> AttributeValue:
        value = any_value(AnyValue.FromString(raw)) if raw is not None else None
        if len(self) >= self._max_entries:
            self.clear()
            self[None] = None
        self[raw] = value
        return value


def any_value(value: AnyValue) -> AttributeValue:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attribute_dict(value.kvlist_value.values)
    result: AttributeValue = getattr(value, kind)
    return result


def attribute_dict(attributes: Any) -> dict[str, AttributeValue]:
    """OTLP ``KeyValue`` list as a dict (the last value of a repeated key wins, as in the SDK)."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def string_attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def double_attribute(key: str, value: float) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(double_value=value))


class JsonMappingError(ValueError):
    """An OTLP/JSON document does not follow the mapping; the message names the field."""


def _ids_to_base64(node: Any, path: str) -> Any:
    # OTLP/JSON writes trace and span ids as hex, where the protobuf JSON mapping expects base64.
    if isinstance(node, Mapping):
        converted: dict[str, Any] = {}
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    converted[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise JsonMappingError(f"{where}: {value!r} is not a hex id") from None
            else:
                converted[key] = _ids_to_base64(value, where)
        return converted
    if isinstance(node, list):
        return [_ids_to_base64(item, f"{path}[{index}]") for index, item in enumerate(node)]
    return node


def otlp_json_to_message(document: Any, message: Message) -> None:
    """Fill ``message`` from an OTLP/JSON document (hex ids, enum integers, lowerCamelCase names)."""
    from google.protobuf import json_format

    if not isinstance(document, Mapping):
        raise JsonMappingError("the body is not a JSON object")
    try:
        json_format.ParseDict(_ids_to_base64(document, ""), message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, RecursionError) as error:
        raise JsonMappingError(str(error)) from None


def message_to_otlp_json(message: Message) -> bytes:
    from google.protobuf import json_format

    text: str = json_format.MessageToJson(message, indent=None)
    return text.encode()
