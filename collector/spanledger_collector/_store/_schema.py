"""The field tables of the stored records, and what is derived from them (docs/schema.md).

Each stored record is declared once, as a typed class whose fields carry their storage :class:`Kind` in
``Annotated`` metadata: :class:`~._facts.UsageFact`, :class:`~._rows.DataRead` (NamedTuples, one per row) and
:class:`~._rows.SpanColumns` (a dataclass of columns). :func:`table_of` reads such a class into a
:class:`Table`; the DuckDB DDL, the Arrow kinds of the compiled row converter (``_columns.c``) and the check
of the compiled decoder's field order (``_decode/_usage.py``) all come from that table. The ClickHouse DDL
(``_clickhouse_schema.py``) maps the same kinds to its types.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, get_args, get_origin

__all__ = ["Column", "Field", "Kind", "Table", "table_of"]


class Kind(Enum):
    """How a field is stored: the row converter's kind code (``_columns.c``), the DuckDB and the ClickHouse type."""

    STRING = ("s", "VARCHAR", "String")
    """Text of many values (ids)."""
    NAME = ("s", "VARCHAR", "LowCardinality(String)")
    """Text of few distinct values (meters, models, tenants): ClickHouse keeps a dictionary of them."""
    TIMESTAMP = ("t", "TIMESTAMP", "DateTime64(6, 'UTC')")
    """A naive UTC ``datetime`` (microseconds)."""
    TIMESTAMP_NANOS = ("n", "TIMESTAMP", "DateTime64(9, 'UTC')")
    """Integer nanoseconds since the epoch, stored as a microsecond timestamp in DuckDB."""
    INT8 = ("b", "TINYINT", "Int8")
    INT32 = ("i", "INTEGER", "Int32")
    INT64 = ("l", "BIGINT", "Int64")
    FLOAT64 = ("f", "DOUBLE", "Float64")
    QUANTITY = ("q", "DECIMAL(38, 9)", "Decimal(38, 9)")
    """An exact ``Decimal`` with at most 9 decimal places (usage quantities)."""
    MONEY = ("c", "DECIMAL(38, 12)", "Decimal(38, 12)")
    """An exact ``Decimal`` with at most 12 decimal places (estimated costs)."""

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def duckdb_type(self) -> str:
        return self.value[1]

    @property
    def clickhouse_type(self) -> str:
        return self.value[2]


@dataclass(frozen=True)
class Column:
    """``Annotated`` metadata for a field stored under another column name than its attribute's."""

    kind: Kind
    name: str


@dataclass(frozen=True)
class Field:
    name: str
    """The column's name in the store."""
    attribute: str
    """The record's attribute holding it."""
    kind: Kind
    nullable: bool


@dataclass(frozen=True)
class Table:
    """A stored record's fields; what is derived from them is computed once (the store reads it per insert)."""

    name: str
    fields: tuple[Field, ...]

    @cached_property
    def kinds(self) -> str:
        """The fields' kind codes in order, as ``_columns.c`` takes them."""
        return "".join(field.kind.code for field in self.fields)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    @cached_property
    def attributes(self) -> tuple[str, ...]:
        return tuple(field.attribute for field in self.fields)

    def column_definitions(self, *, constraints: bool = True) -> str:
        """``name TYPE [NOT NULL], ...`` (without constraints: for a scratch table of the same shape)."""
        return ", ".join(
            f"{field.name} {field.kind.duckdb_type}" + (" NOT NULL" if constraints and not field.nullable else "")
            for field in self.fields
        )

    def clickhouse_type(self, name: str) -> str:
        """The ClickHouse type of the field ``name`` (as in :meth:`clickhouse_column_definitions`)."""
        return _clickhouse_type(next(field for field in self.fields if field.name == name))

    def clickhouse_column_definitions(self) -> str:
        """``name Type, ...``: a nullable field is ``Nullable(T)`` (``LowCardinality(Nullable(String))``)."""
        return ", ".join(f"{field.name} {_clickhouse_type(field)}" for field in self.fields)

    def duckdb_ddl(self) -> str:
        columns = ",\n  ".join(
            f"{field.name} {field.kind.duckdb_type}" + ("" if field.nullable else " NOT NULL") for field in self.fields
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {columns}\n)"


def _clickhouse_type(field: Field) -> str:
    type_ = field.kind.clickhouse_type
    if not field.nullable:
        return type_
    if type_.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({type_[len('LowCardinality(') : -1]}))"
    return f"Nullable({type_})"


def _kind_of(hint: Any, where: str) -> tuple[Kind, str | None, Any]:
    """The kind (and stored name) in an ``Annotated`` hint, and the hint's type."""
    if get_origin(hint) is not typing.Annotated:
        raise TypeError(f"{where}: the field is not Annotated with its Kind")
    annotated_type, *metadata = get_args(hint)
    for item in metadata:
        if isinstance(item, Kind):
            return item, None, annotated_type
        if isinstance(item, Column):
            return item.kind, item.name, annotated_type
    raise TypeError(f"{where}: the field's Annotated metadata names no Kind")


def _nullable(value_type: Any) -> bool:
    return type(None) in get_args(value_type)


def table_of(name: str, record: type) -> Table:
    """The field table of a NamedTuple of rows, or of a dataclass of columns (``list[...]`` fields)."""
    hints = typing.get_type_hints(record, include_extras=True)
    if dataclasses.is_dataclass(record):
        attributes = [field.name for field in dataclasses.fields(record)]
        columnar = True
    else:
        attributes = list(record._fields)  # type: ignore[attr-defined]  # a NamedTuple
        columnar = False
    fields = []
    for attribute in attributes:
        where = f"{record.__name__}.{attribute}"
        kind, stored_name, value_type = _kind_of(hints[attribute], where)
        if columnar:
            if get_origin(value_type) is not list:
                raise TypeError(f"{where}: a column must be a list")
            (value_type,) = get_args(value_type)
        fields.append(Field(stored_name or attribute, attribute, kind, _nullable(value_type)))
    return Table(name, tuple(fields))
