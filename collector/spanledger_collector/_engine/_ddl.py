"""The SQL ``spanledger clickhouse init`` runs: the files in ``sql/`` filled in from the field tables and the
generated usage expressions (``_expressions``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from spanledger import semconv
from spanledger.semconv import SpanledgerDataSourceKindValues as DataSourceKind
from spanledger.semconv import SpanledgerMeterValues as Meter

from .._decode._attribution import DEFAULT_ATTRIBUTION, Attribution
from .._store import DATA_READS, Table
from .._store._clickhouse_client import quote_identifier as quoted
from .._store._clickhouse_schema import INIT_USAGE_REPORTS, WINDOW
from .._store._facts import ESTIMATE_FIELDS, USAGE_FACTS
from .._store._retractions import COUNTED_USAGE_FACTS
from . import _expressions as x

# The token meters llm_token_prices prices; cloud_prices prices the others.
TOKEN_METERS = (
    Meter.LLM_INPUT_TOKENS.value,
    Meter.LLM_CACHE_READ_TOKENS.value,
    Meter.LLM_CACHE_WRITE_TOKENS.value,
    Meter.LLM_OUTPUT_TOKENS.value,
)
NO_PROVIDER = "\0"
"""The price table's provider for facts without one (genai-prices then matches the model under any provider)."""
NULL_KEY = "\0"
"""``cloud_prices``' value for a price key's field that the facts have NULL (the catalog tells NULL from '')."""
NOT_IN_PRICE_TABLE = (
    "not_in_price_table: run spanledger clickhouse init again to price the models and resources seen since"
)

__all__ = [
    "MAX_DEPTH",
    "NOT_IN_PRICE_TABLE",
    "NO_PROVIDER",
    "NULL_KEY",
    "PRICED_VIEWS",
    "TOKEN_METERS",
    "Names",
    "backfill",
    "quoted",
    "sql_file",
    "statements",
]

MAX_DEPTH = 64
"""How many ancestors counted-once follows up a trace (the decoder follows all; a deeper trace is unusual)."""


def measured(table: Table, *, exclude: tuple[str, ...] = ()) -> Table:
    return Table(table.name, tuple(field for field in table.fields if field.name not in exclude))


@dataclass(frozen=True)
class Names:
    """Where ``init`` reads and what it creates."""

    database: str
    traces_table: str = "otel_traces"
    traces_database: str = ""
    usage_reports: str = INIT_USAGE_REPORTS
    data_reads: str = "data_reads"
    """The view of the data reads, attributed; the events are in ``data_read_events``."""
    data_read_events: str = "data_read_events"
    usage_facts: str = "usage_facts"
    trace_bounds: str = ""
    """The exporter's ``<traces_table>_trace_id_ts`` (each trace's first and last span start) where it exists: the
    windowed views read only the partitions of ``otel_traces`` their traces lie in."""
    prices: str = "llm_token_prices"
    cloud_prices: str = "cloud_prices"
    attribution: Attribution = field(default=DEFAULT_ATTRIBUTION)
    """The attribution lists (the ``spanledger_usage`` processor's ``attribution`` setting; its defaults)."""

    @property
    def traces(self) -> str:
        return self.traces_database or self.database

    @property
    def usage_facts_window(self) -> str:
        """The parameterised ``usage_facts``: the facts overlapping a time window, of one trace or all."""
        return f"{self.usage_facts}_window"

    @property
    def data_reads_window(self) -> str:
        """The parameterised ``data_reads``: the reads within a time window, of one trace or all."""
        return f"{self.data_reads}_window"

    @property
    def usage_reports_view(self) -> str:
        """The materialized view over the traces table (answers on the store find that table through it)."""
        return f"{self.usage_reports}_spans"


def sql_file(name: str) -> str:
    return resources.files(__package__).joinpath("sql").joinpath(name).read_text()


_VALID_SPAN = (
    "length(TraceId) = 32 AND TraceId != repeat('0', 32) AND length(SpanId) = 16 AND SpanId != repeat('0', 16)"
)


def backfill(view_statement: str) -> str:
    """``INSERT INTO <target> <the view's SELECT>``: what a materialized view would have written for the rows
    already in the traces table. Safe to repeat, and with the view live: the targets are ReplacingMergeTree on
    the row identity, so a row written by both collapses into one."""
    head, select = view_statement.split(" AS\nSELECT", 1)
    target = head.rsplit(" TO ", 1)[1]
    return f"INSERT INTO {target}\nSELECT{select}"


@dataclass(frozen=True)
class _Traces:
    """Which traces a read-time view resolves: every one, or those with rows in its parameters' window.

    Counted-once and attribution walk a trace's spans, so a window's rows are resolved over their whole traces:
    every report of those traces, and every span of them in the traces table (within the traces' bounds where the
    exporter's trace-bounds table exists). A window's rows are then the whole view's rows in that window."""

    ctes: str
    """CTEs before the view's own (``window_traces``, ``trace_bounds``), or nothing."""
    spans: str
    """Condition on traces-table rows (their ``TraceId`` already among the traces resolved)."""
    window: tuple[str, str] | None
    """The rows' start and end time columns compared with the window (the same for a point in time), or None."""

    @classmethod
    def every(cls) -> _Traces:
        return cls("", "TRUE", None)

    @classmethod
    def within(cls, names: Names, table: str, start: str, end: str) -> _Traces:
        """The traces of ``table``'s rows overlapping the window (their ``start`` and ``end`` columns)."""
        ctes = (
            f"  window_traces AS (\n    SELECT DISTINCT trace_id FROM {quoted(names.database)}.{quoted(table)}\n"
            f"    WHERE {_overlaps('', start, end)}\n  ),\n"
        )
        spans = "TRUE"
        if names.trace_bounds:
            # Every window trace's first and last span start; unbounded unless the bounds table has them all (its
            # rows are written by the exporter's view from the day it exists, and expire by the day the trace
            # began, so a backfilled or midnight-crossing trace may have none) within what its DateTime holds
            # (a span before 1970 or after 2106-02-07 saturates its bound). As the spans' DateTime64(9):
            # against a DateTime, chdb 26.9's key analysis pruned parts holding matching rows
            # (`WHERE Timestamp < (SELECT max(End) + 1 …)` read none; the same comparison in the SELECT list is
            # true): ClickHouse/ClickHouse#19078, #50353.
            covered = (
                "uniqExact(TraceId) = (SELECT count() FROM window_traces) AND min(Start) > toDateTime(0) "
                "AND max(End) < toDateTime(4294967295)"
            )
            ctes += (
                "  trace_bounds AS (\n"
                f"    SELECT if({covered}, toDateTime64(min(Start), 9), {_SPANS_EVER[0]}) AS first_start,\n"
                f"      if({covered}, toDateTime64(max(End), 9) + toIntervalSecond(1), {_SPANS_EVER[1]})"
                " AS after_last_start\n"
                f"    FROM {quoted(names.traces)}.{quoted(names.trace_bounds)}\n"
                "    WHERE TraceId IN (SELECT trace_id FROM window_traces)\n  ),\n"
            )
            spans = (
                "Timestamp >= (SELECT first_start FROM trace_bounds) "
                "AND Timestamp < (SELECT after_last_start FROM trace_bounds)"
            )
        return cls(ctes, spans, (start, end))

    def traces_read(self, row: str = "") -> str:
        """Condition on a row (alias ``row``) of the reports or events: of a trace resolved."""
        return "TRUE" if self.window is None else f"{_column(row, 'trace_id')} IN (SELECT trace_id FROM window_traces)"

    def rows_read(self, row: str) -> str:
        """Condition on a row (alias ``row``) the view returns: of a trace resolved, and in the window."""
        if self.window is None:
            return "TRUE"
        return f"{self.traces_read(row)} AND {_overlaps(row, *self.window)}"


# DateTime64(9)'s range: the spans' bounds when the bounds table does not cover the window's traces.
_SPANS_EVER = ("toDateTime64('1900-01-01 00:00:00', 9, 'UTC')", "toDateTime64('2262-04-11 00:00:00', 9, 'UTC')")


def _column(row: str, name: str) -> str:
    return f"{row}.{name}" if row else name


def _overlaps(row: str, start: str, end: str) -> str:
    """Condition: the row's ``[start, end]`` overlaps ``[since, until]``, and it is of trace ``trace`` if given."""
    return WINDOW.condition(_column(row, start), _column(row, end), _column(row, "trace_id"))


def _span_chains(names: Names, traces: _Traces) -> str:
    """The CTEs that walk each ``starts`` span's ancestors and gather the attribution lists' values on them."""
    attribution = names.attribution
    listed = tuple(sorted(attribution.names()))
    return sql_file("span_chains.sql").format(
        spans_read=traces.spans,
        traces_database=quoted(names.traces),
        traces_table=quoted(names.traces_table),
        max_depth=MAX_DEPTH,
        workflow_values=x.listed_values(attribution.workflow),
        tenant_values=x.listed_values(attribution.tenant),
        listed_names="CAST([" + ", ".join(x.literal(name) for name in listed) + "] AS Array(String))",
        span_values=f"{x.nullable('SpanAttributes')} AS {x.SPAN}",
    )


def _attributed_columns(columns: tuple[str, ...], row: str, attribution: Attribution) -> str:
    """The select list of ``columns`` of ``row``, workflow and tenant attributed from the ``a`` chains."""
    chosen = {
        "workflow": x.attributed(f"{row}.workflow", "a.workflow_chain", len(attribution.workflow)),
        "tenant": x.attributed(f"{row}.tenant", "a.tenant_chain", len(attribution.tenant)),
    }
    return ",\n  ".join(f"{chosen.get(name, f'{row}.{name}')} AS {name}" for name in columns)


def statements(names: Names) -> list[str]:
    """The CREATE statements, in order (each idempotent)."""
    span_and_resource_values = (
        f"{x.nullable('SpanAttributes')} AS {x.SPAN}, {x.nullable('ResourceAttributes')} AS {x.RESOURCE}"
    )
    common = {
        "database": quoted(names.database),
        "traces_database": quoted(names.traces),
        "traces_table": quoted(names.traces_table),
        "valid_span": _VALID_SPAN,
        "service": x.SERVICE,
    }
    measured_columns = measured(USAGE_FACTS, exclude=ESTIMATE_FIELDS).clickhouse_column_definitions()
    created = [
        sql_file("usage_reports.sql").format(**common, table=quoted(names.usage_reports), columns=measured_columns),
        sql_file("data_reads.sql").format(
            **common, table=quoted(names.data_read_events), columns=DATA_READS.clickhouse_column_definitions()
        ),
    ]
    let = x.Lets("r_")
    reading = x.merged(let, x.owner_reading(let), x.candidate_reading(let))
    for name in ("resource_id", "provider", "account_id", "region", "model", "workflow", "tenant"):
        let(name, getattr(reading, name))
    let("service", x.SERVICE)
    let("reports", reading.reports)
    let("facts", x.facts(let, reading))
    read = ("TraceId", "SpanId", "ParentSpanId", "Timestamp", "Duration", "SpanKind", x.SPAN, x.RESOURCE)
    spans = (
        f"SELECT {', '.join(read[:6])}, {span_and_resource_values}\n"
        f"FROM {common['traces_database']}.{common['traces_table']}\nWHERE {x.MAY_REPORT} AND {_VALID_SPAN}"
    )
    outputs = ("TraceId", "SpanId", "ParentSpanId", "r_resource_id", "r_provider", "r_account_id", "r_region",
               "r_model", "r_workflow", "r_tenant", "r_service", "r_owner", "r_reports", "r_facts")  # fmt: skip
    created.append(
        sql_file("usage_reports_view.sql").format(
            **common,
            view=quoted(names.usage_reports_view),
            table=quoted(names.usage_reports),
            lets=let.layered(spans, read, outputs),
        )
    )
    let = x.Lets("d_")
    reads = x.reads_expressions(let, "event_time", "event_name", "event_attributes")
    for name in ("source", "source_kind", "last_modified", "age_seconds", "bytes", "staleness_method",
                 "workflow", "tenant"):  # fmt: skip
        let(name, getattr(reads, name))
    let("service", x.SERVICE)
    lets = let.select_list()
    created.append(
        sql_file("data_reads_view.sql").format(
            **common,
            view=quoted(f"{names.data_reads}_events"),
            table=quoted(names.data_read_events),
            lets=lets,
            condition=reads.condition,
            event_values=f"CAST(Events.Attributes AS Array({x.NULLABLE_MAP})) AS event_values",
            span_values=span_and_resource_values,
            event_name=x.literal(semconv.EVENT_SPANLEDGER_DATA_READ),
        )
    )
    let = x.Lets("o_")
    read_object = x.object_read(let)
    for name in ("read_time", "source", "bytes", "workflow", "tenant"):
        let(name, getattr(read_object, name))
    let("service", x.SERVICE)
    let("object_read", read_object.condition)
    object_columns = ("TraceId", "SpanId", "Timestamp", "Duration", x.SPAN, x.RESOURCE)
    aws_spans = (
        f"SELECT {', '.join(object_columns[:4])}, {span_and_resource_values}\n"
        f"FROM {common['traces_database']}.{common['traces_table']}\n"
        f"WHERE NOT {x.present('SpanAttributes', semconv.SPANLEDGER_USAGE_OWNER)} AND {x.AWS_CALL} AND {_VALID_SPAN}"
    )
    object_outputs = ("TraceId", "SpanId", "o_read_time", "o_source", "o_bytes", "o_workflow", "o_tenant",
                      "o_service", "o_object_read")  # fmt: skip
    given = {
        "trace_id": "TraceId",
        "span_id": "SpanId",
        "seq": "toInt32(0)",
        "source_kind": x.literal(DataSourceKind.OBJECT_STORE.value),
        **{name: f"o_{name}" for name in ("read_time", "source", "bytes", "workflow", "tenant", "service")},
    }
    columns = ",\n  ".join(
        f"{given.get(name, f'CAST(NULL AS {DATA_READS.clickhouse_type(name)})')} AS {name}"
        for name in DATA_READS.column_names
    )  # fmt: skip
    created.append(
        sql_file("data_reads_objects_view.sql").format(
            **common,
            view=quoted(f"{names.data_reads}_objects"),
            table=quoted(names.data_read_events),
            columns=columns,
            lets=let.layered(aws_spans, object_columns, object_outputs),
        )
    )
    created += _walking_views(
        names,
        "data_reads_attributed.sql",
        (names.data_reads, names.data_reads_window),
        _Traces.within(names, names.data_read_events, "read_time", "read_time"),
        "e",
        table=quoted(names.data_read_events),
        columns=_attributed_columns(DATA_READS.column_names, "e", names.attribution),
    )
    measured_names = [name for name in USAGE_FACTS.column_names if name not in ESTIMATE_FIELDS]
    created += _walking_views(
        names,
        "usage_facts.sql",
        (names.usage_facts, names.usage_facts_window),
        _Traces.within(names, names.usage_reports, "start_time", "end_time"),
        "f",
        reports=quoted(names.usage_reports),
        attributed_columns=_attributed_columns(tuple(measured_names), "f", names.attribution),
        fact_columns=",\n  ".join(measured_names),
        prices=quoted(names.prices),
        cloud_prices=quoted(names.cloud_prices),
        no_provider=x.literal(NO_PROVIDER),
        null_key=x.literal(NULL_KEY),
        not_in_price_table=x.literal(NOT_IN_PRICE_TABLE),
    )
    # The name the collector's store gives its counted facts, so the answers and the ClickHouse dashboard read one
    # name on both (the usage_facts view above already counts each call once).
    created.append(
        f"CREATE OR REPLACE VIEW {quoted(names.database)}.{quoted(COUNTED_USAGE_FACTS)} AS\n"
        f"SELECT * FROM {quoted(names.database)}.{quoted(names.usage_facts)}"
    )
    return created


def _walking_views(
    names: Names, template: str, views: tuple[str, str], window: _Traces, row: str, **fields: str
) -> list[str]:
    """A view that walks its rows' traces at read time (``template``), twice: ``views[0]`` over every trace, and
    ``views[1]`` parameterised by a window (``_clickhouse_schema.WINDOW``) that resolves only the traces with rows
    in it, so that a read's cost follows the window, not the history. ``row``: the template's alias of a row."""
    return [
        sql_file(template).format(
            **fields,
            database=quoted(names.database),
            view=quoted(view),
            traces=traces.ctes,
            traces_read=traces.traces_read(),
            rows_read=traces.rows_read(row),
            span_chains=_span_chains(names, traces),
        )
        for view, traces in zip(views, (_Traces.every(), window), strict=True)
    ]


PRICED_VIEWS = 3
"""The last statements of :func:`statements`: views over the price table, created once it is loaded."""
