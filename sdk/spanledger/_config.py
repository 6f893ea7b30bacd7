"""Settings: every option of ``spanledger.configure()``, its environment variable and default.

The ``Settings`` dataclass *is* the options table (like Logfire's ``ConfigParam`` list): each field is
declared with :func:`option`, which records its documentation and the environment variables read for
it. Resolution order for each option: the keyword argument, then the first environment variable that
is set, then the default. A bad environment value is logged naming the variable and the default is
used; it never raises. A bad keyword argument raises ``ValueError`` (a programming error).

``OTEL_*`` variables that the OpenTelemetry SDK reads itself (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``,
``OTEL_PROPAGATORS``) are left to it and are not repeated here.

To add an option, add a field with ``option(default, doc=...)``; its variable is
``SPANLEDGER_<FIELD NAME>`` unless ``env=`` says otherwise. Field types the parser understands:
``bool``, ``int``, ``float``, ``str``, ``str | None``, ``tuple[str, ...]``, ``frozenset[str]`` (both
comma-separated) and ``Literal[...]`` of strings.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ENV_PREFIX", "CaptureMode", "OptionInfo", "Settings", "options", "options_markdown", "resolve_settings"]

ENV_PREFIX = "SPANLEDGER_"

logger = logging.getLogger("spanledger")

Parser = Callable[[str], Any]


def option(
    default: Any, *, doc: str, env: tuple[str, ...] = (), parse: Parser | None = None, merge: bool = False
) -> Any:
    """A ``Settings`` field: its default, one-line documentation, and extra environment variables.

    ``env`` lists variables read *after* ``SPANLEDGER_<NAME>`` (standard ``OTEL_*`` names); ``parse``
    overrides the parser derived from the field's type. ``merge`` (set fields): the values of every
    variable that is set are combined, instead of the first one set winning.
    """
    return dataclasses.field(default=default, metadata={"doc": doc, "env": env, "parse": parse, "merge": merge})


class CaptureMode(str, enum.Enum):
    """Where message content goes (``capture_message_content``). Compares equal to its text.

    Falsy for ``no_content``, so code that asks ``if settings.capture_message_content:`` (the option was a
    boolean) still records nothing unless content was opted in.
    """

    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    def __bool__(self) -> bool:
        return self is not CaptureMode.NO_CONTENT

    @property
    def on_span(self) -> bool:
        """Content goes on span attributes (``span_only``, ``span_and_event``)."""
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    def __str__(self) -> str:
        return self.value


CAPTURE_MODES = tuple(mode.value for mode in CaptureMode)


def _parse_capture(value: str) -> CaptureMode:
    # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is a mode in util-genai and the current conventions
    # (NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT) and a boolean in older instrumentations: true
    # means content on the span, as spanledger always did.
    mode = value.strip().lower()
    if mode in CAPTURE_MODES:
        return CaptureMode(mode)
    try:
        return CaptureMode.SPAN_ONLY if _parse_bool(value) else CaptureMode.NO_CONTENT
    except ValueError:
        raise ValueError(f"expected one of {', '.join(CAPTURE_MODES)} (or true/false)") from None


def _parse_import_path(value: str) -> str:
    module, _, name = value.strip().partition(":")
    if not module or not name:
        raise ValueError("expected module:name")
    return value.strip()


_GEN_AI_OPT_INS = ("", "gen_ai_latest_experimental", "gen_ai_latest_experimental/dup")


def _parse_semconv_opt_in(value: str) -> str:
    # OTEL_SEMCONV_STABILITY_OPT_IN is a list covering every domain ("http,gen_ai_latest_experimental").
    tokens = [token.strip() for token in value.split(",")]
    gen_ai = [token for token in tokens if token.startswith("gen_ai")]
    if not gen_ai:
        return ""
    if gen_ai[-1] not in _GEN_AI_OPT_INS:
        raise ValueError(f"expected one of {', '.join(repr(v) for v in _GEN_AI_OPT_INS[1:])}")
    return gen_ai[-1]


_HTTP_OPT_INS = ("http", "http/dup")


def _parse_http_semconv_opt_in(value: str) -> str:
    # The same OTEL_SEMCONV_STABILITY_OPT_IN list; no http token means spanledger's default, the stable names.
    tokens = [token.strip().lower() for token in value.split(",")]
    http = [token for token in tokens if token.startswith("http")]
    if not http:
        return "http"
    if "http/dup" in http:  # as upstream: http/dup wins over http
        return "http/dup"
    if http[-1] not in _HTTP_OPT_INS:
        raise ValueError(f"expected one of {', '.join(repr(v) for v in _HTTP_OPT_INS)}")
    return "http"


def _parse_seconds(value: str) -> float:
    seconds = float(value)
    if not seconds >= 0:  # also refuses NaN
        raise ValueError("expected a number of seconds, 0 or more")
    return seconds


def _parse_egress_rules(value: str) -> str:
    from ._egress import parse_egress_rules

    parse_egress_rules(value)  # raises ValueError naming the bad rule
    return value.strip()


@dataclass(frozen=True)
class Settings:
    """The resolved options. Build with :func:`resolve_settings`; instances are immutable."""

    service_name: str | None = option(
        None,
        doc="`service.name` of the resource spanledger creates; unset: `OTEL_SERVICE_NAME`, read by the OTel SDK.",
    )
    export: Literal["otlp", "console", "none"] = option(
        "otlp",
        env=("OTEL_TRACES_EXPORTER",),
        doc="Where spans and metrics go: `otlp` (protocol and endpoint from `OTEL_EXPORTER_OTLP_*`, default "
        "http/protobuf to localhost:4318), `console`, or `none`. Ignored for a provider the application set up.",
    )
    metrics: bool = option(True, doc="Create a MeterProvider and record metrics (token usage, durations).")
    exit_timeout: float = option(
        2.0,
        parse=_parse_seconds,
        doc="Seconds the program's exit (and the end of a `multiprocessing` worker) waits for spanledger's "
        "exporters to send what is buffered; the rest is dropped and logged once, so an unreachable collector "
        "never holds up an exit. Only for providers spanledger created.",
    )
    capture_message_content: CaptureMode = option(  # noqa: RUF009 (an enum: immutable)
        CaptureMode.NO_CONTENT,
        env=("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",),
        parse=_parse_capture,
        doc="Where prompts, completions, system instructions and tool definitions go: `no_content`, `span_only` "
        "(span attributes), `event_only` (a `gen_ai.client.inference.operation.details` event through the OTel "
        "Logs API) or `span_and_event`; `true`/`false` mean `span_only`/`no_content`.",
    )
    emit_event: bool | None = option(
        None,
        env=("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT",),
        doc="Emit the `gen_ai.client.inference.operation.details` event for every GenAI call (with content only "
        "when the capture mode includes events); unset: when the capture mode includes events.",
    )
    # Any: the keyword takes the hook object itself (the variable its import path).
    completion_hook: Any = option(  # noqa: RUF009
        None,
        parse=_parse_import_path,
        doc="Called with each call's content, span and event (`on_completion(*, inputs, outputs, "
        "system_instruction, tool_definitions, span, log_record)`), e.g. to upload large content; a keyword "
        "takes the object, the variable a `module:name` import path (of the hook or a factory for it).",
    )
    content_upload_path: str | None = option(
        None,
        env=("OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH",),
        doc="A directory: each call's content is written there as JSON files, and their `file://` URIs go on "
        "the span and event as `gen_ai.*_ref` attributes (`spanledger.ContentUploadHook`).",
    )
    experimental_metrics: bool = option(
        False,
        doc="Also record the token metrics of the newest semantic-conventions draft (PR 374): the "
        "`gen_ai.client.inference.usage.*` counters and `gen_ai.client.inference.operation.*_tokens` histograms. "
        "The released metrics (`gen_ai.client.token.usage`...) are recorded either way.",
    )
    semconv_opt_in: str = option(
        "",
        env=("OTEL_SEMCONV_STABILITY_OPT_IN",),
        parse=_parse_semconv_opt_in,
        doc="GenAI attribute names: empty (released names), `gen_ai_latest_experimental` (newest) or "
        "`gen_ai_latest_experimental/dup` (both). Metrics are not affected (see `experimental_metrics`).",
    )
    http_semconv_opt_in: Literal["http", "http/dup"] = option(
        "http",
        env=("OTEL_SEMCONV_STABILITY_OPT_IN",),
        parse=_parse_http_semconv_opt_in,
        doc="HTTP span and metric names on httpx/httpx2 calls: `http` (the stable names: `http.request.method`, "
        "`url.full`, `http.response.status_code`, `http.client.request.duration`), or `http/dup` (old and stable "
        "both). Applies to spanledger's httpx instrumentation only; other HTTP instrumentations read "
        "`OTEL_SEMCONV_STABILITY_OPT_IN` themselves.",
    )
    openai_stream_usage: bool = option(
        True, doc="Ask OpenAI streams for the usage chunk when the caller did not, and hide that chunk from it."
    )
    openai_stream_usage_excluded_hosts: tuple[str, ...] = option(
        (),
        doc="Comma-separated base-URL host suffixes whose servers reject `stream_options`, in addition to "
        "`.openai.azure.com` (always excluded). A server not listed that answers 400 naming `stream_options` "
        "is retried once without it and remembered.",
    )
    disabled_instrumentations: frozenset[str] = option(
        frozenset(),
        env=("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",),
        merge=True,
        doc="Comma-separated instrumentation names not to enable (`openai`, `httpx`, `botocore`...); the names "
        "in both variables count.",
    )
    region: str | None = option(
        None,
        env=("AWS_REGION", "AWS_DEFAULT_REGION"),
        doc="Cloud region this process runs in, for egress boundaries; unset: the resource's `cloud.region`.",
    )
    availability_zone: str | None = option(
        None, doc="Availability zone this process runs in; unset: the resource's `cloud.availability_zone`."
    )
    egress_rules: str = option(
        "",
        parse=_parse_egress_rules,
        doc="Where destinations are, for egress boundaries: `PATTERN=TARGET` rules separated by commas, first "
        "match wins. PATTERN: `.suffix`, host, CIDR or `*`; TARGET: a boundary (`internet`, `inter_region`, "
        "`inter_zone`, `intra_zone`, `unknown`), `region:<region>` or `zone:<zone>`. "
        "E.g. `10.0.0.0/8=region:us-east-1,.svc.cluster.local=intra_zone,*=internet`.",
    )


@dataclass(frozen=True)
class OptionInfo:
    """One row of the options table."""

    name: str
    env_vars: tuple[str, ...]
    default: Any
    doc: str
    parse: Parser
    merge: bool


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _parse_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _parser_for(tp: Any) -> Parser:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is bool:
        return _parse_bool
    if tp in (int, float, str):
        return tp  # type: ignore[no-any-return]
    if origin is Literal:
        allowed = tuple(str(arg) for arg in args)

        def parse_choice(value: str) -> str:
            choice = value.strip().lower()
            if choice not in allowed:
                raise ValueError(f"expected one of {', '.join(allowed)}")
            return choice

        return parse_choice
    if origin is tuple:
        return lambda value: tuple(_parse_list(value))
    if origin is frozenset:
        return lambda value: frozenset(_parse_list(value))
    if type(None) in args:  # X | None
        (inner,) = (arg for arg in args if arg is not type(None))
        parse_inner = _parser_for(inner)
        return lambda value: parse_inner(value) if value.strip() else None
    raise TypeError(f"no parser for option type {tp!r}")


def _build_options() -> dict[str, OptionInfo]:
    hints = typing.get_type_hints(Settings)
    table = {}
    for field in dataclasses.fields(Settings):
        metadata = field.metadata
        table[field.name] = OptionInfo(
            name=field.name,
            env_vars=(ENV_PREFIX + field.name.upper(), *metadata.get("env", ())),
            default=field.default,
            doc=metadata.get("doc", ""),
            parse=metadata.get("parse") or _parser_for(hints[field.name]),
            merge=metadata.get("merge", False),
        )
    return table


_OPTIONS = _build_options()


def options() -> tuple[OptionInfo, ...]:
    """Every option in declaration order (the README's configuration table is generated from this)."""
    return tuple(_OPTIONS.values())


def _validate_keyword(info: OptionInfo, value: Any) -> Any:
    if isinstance(value, str) and not isinstance(info.default, str):
        # Accept the same text a user would put in the environment variable.
        return info.parse(value)
    if isinstance(info.default, tuple):
        return tuple(value)
    if isinstance(info.default, frozenset):
        return frozenset(value)
    if isinstance(info.default, (str, float)) and value is not None:
        return info.parse(str(value))
    return value


def resolve_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from keyword ``overrides`` (``None`` means not given), then ``environ``, then defaults."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    unknown = set(overrides) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown spanledger option(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, info in _OPTIONS.items():
        given = overrides.get(name)
        if given is not None:
            try:
                values[name] = _validate_keyword(info, given)
            except ValueError as error:
                raise ValueError(f"spanledger.configure({name}={given!r}): {error}") from None
            continue
        for env_var in info.env_vars:
            raw = environ.get(env_var)
            if raw is None or not raw.strip():  # empty means unset, as for OTEL_* variables
                continue
            try:
                parsed = info.parse(raw)
            except (ValueError, TypeError) as error:
                logger.error(
                    "spanledger: ignoring %s=%r (%s); using the default %r for option %r",
                    env_var, raw, error, info.default, name,
                )
                break
            if not info.merge:
                values[name] = parsed
                break
            values[name] = values.get(name, info.default) | parsed
    return Settings(**values)


def _format_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (tuple, frozenset)):
        return f"`{','.join(sorted(value) if isinstance(value, frozenset) else value)}`" if value else "empty"
    return f"`{value}`" if value != "" else "empty"


def options_markdown() -> str:
    """The README's configuration table (a test keeps the README in step with this)."""
    lines = [
        "| `configure()` keyword | environment variables | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for info in options():
        env = ", ".join(f"`{name}`" for name in info.env_vars)
        lines.append(f"| `{info.name}` | {env} | {_format_default(info.default)} | {info.doc} |")
    return "\n".join(lines) + "\n"
