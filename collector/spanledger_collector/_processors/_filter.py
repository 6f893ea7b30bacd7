"""The ``filter`` processor: drops the spans that match, before the processors after it see them.

A small subset of the OTel Collector's filter processor (its legacy ``spans.exclude`` form)::

    filter/no-health:
      spans:
        exclude:
          match_type: strict            # or regexp (full match)
          span_names: [GET /health]     # any of these names ...
          attributes: [{key: http.route, value: /health}]   # ... and all of these attributes

A span is dropped when every property given matches. Dropped spans are accepted (not refused), as in
otelcol. Its place in the pipeline matters: before ``spanledger_usage`` a dropped span yields no usage; after
it, the span's usage is kept while the span itself is neither stored nor sent onward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .._component import NothingToStart, PermanentError
from .._config import LoadContext
from .._config_reader import ConfigSection
from .._decode import any_value
from ._item import PipelineItem

__all__ = ["FilterFactory", "FilterProcessor", "FilterSettings"]

_MATCH_TYPES = ("strict", "regexp")


@dataclass(frozen=True)
class FilterSettings:
    span_names: tuple[re.Pattern[str], ...]
    attributes: tuple[tuple[str, re.Pattern[str]], ...]


class FilterProcessor(NothingToStart):
    def __init__(self, component_id: str, settings: FilterSettings) -> None:
        self.component_id = component_id
        self.settings = settings

    def _matches(self, span: Span) -> bool:
        names, attributes = self.settings.span_names, self.settings.attributes
        if names and not any(pattern.fullmatch(span.name) for pattern in names):
            return False
        if attributes:
            values = {attribute.key: attribute.value for attribute in span.attributes}
            for key, pattern in attributes:
                value = values.get(key)
                if value is None or not pattern.fullmatch(str(any_value(value))):
                    return False
        return True

    def process(self, item: PipelineItem) -> None:
        try:
            request = ExportTraceServiceRequest.FromString(item.data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None
        dropped = 0
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                kept = [span for span in scope_spans.spans if not self._matches(span)]
                if len(kept) != len(scope_spans.spans):
                    dropped += len(scope_spans.spans) - len(kept)
                    del scope_spans.spans[:]
                    scope_spans.spans.extend(kept)
        if dropped:
            item.data = request.SerializeToString()
            item.decoded = None
            item.dropped_spans += dropped


class FilterFactory:
    type = "filter"
    signals: tuple[str, ...] = ("traces",)
    after: tuple[str, ...] = ()

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> FilterSettings:
        spans = section.section("spans")
        exclude = spans.section("exclude")
        spans.done()
        regexp = exclude.choice("match_type", _MATCH_TYPES, "strict") == "regexp"

        def pattern(text: str, where: ConfigSection, name: str) -> re.Pattern[str]:
            try:
                return re.compile(text if regexp else re.escape(text))
            except re.error as error:
                raise where.fail(name, f"not a regular expression ({error})") from None

        names = tuple(pattern(name, exclude, "span_names") for name in exclude.strings("span_names"))
        attributes = []
        for attribute in exclude.section_list("attributes"):
            key = attribute.required_text("key")
            value = attribute.get("value")
            if not isinstance(value, (str, int, float, bool)):
                raise attribute.fail("value", f"expected a string, number or boolean, got {value!r}")
            attributes.append((key, pattern(str(value), attribute, "value")))
            attribute.done()
        exclude.done()
        if not names and not attributes:
            raise exclude.fail("", "give span_names and/or attributes (otherwise every span would be dropped)")
        return FilterSettings(names, tuple(attributes))

    def create(self, component_id: str, config: FilterSettings) -> FilterProcessor:
        return FilterProcessor(component_id, config)
