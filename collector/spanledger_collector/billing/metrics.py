"""Prometheus series from the current allocation run of each billing period.

Registered by the collector on its registry (``create_collector(store)``), on a DuckDB or a ClickHouse store:
the queries are SQL files per engine (``sql/<engine>/metrics/*.sql``) run through an :class:`~._engine.Engine`.
Money is exposed as float (Prometheus has no decimal): the engines sum exact decimals and the one conversion
is here, so both give the same samples; the exact figures are in the API and the allocation rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from spanledger import semconv

from .._telemetry import OTHER, label_name, prometheus_name
from ._engine import engine_of
from ._rules import load_rules
from ._store_access import store_connection

__all__ = ["BillingCollector", "create_collector"]

logger = logging.getLogger("spanledger.collector")

_PERIOD = label_name(semconv.SPANLEDGER_BILLING_PERIOD)
_WORKFLOW = label_name(semconv.SPANLEDGER_WORKFLOW_NAME)
_MODEL = label_name(semconv.GEN_AI_REQUEST_MODEL)
_TENANT = label_name(semconv.SPANLEDGER_TENANT_ID)
_RESOURCE_TYPE = label_name(semconv.SPANLEDGER_RESOURCE_TYPE)

_HOUR_SECONDS = Decimal(3600)


def _float(value: Decimal | None) -> float:
    """An exact sum as the gauge's float; a NULL sum (every term NULL) as 0, since a sample cannot lack a value."""
    return float(value) if value is not None else 0.0


class BillingCollector(Collector):
    """The billing gauges; each label from span data (workflow, model, tenant) keeps its costliest values."""

    def __init__(self, store: Any, *, tenant_limit: int = 100, label_limit: int = 100, value_length: int = 128) -> None:
        self._store = store
        self._tenant_limit = tenant_limit
        self._label_limit = label_limit
        self._value_length = value_length
        self._per_instance_rules = [rule.id for rule in load_rules().rules if rule.capacity_per == "instance"]

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must never fail because of the billing tables
            logger.exception("billing metrics could not be read")

    def _collect(self) -> Iterator[Metric]:
        with store_connection(self._store) as connection:
            engine = engine_of(connection)
            if not engine.has_table("allocation_runs"):
                return
            cost = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_COST),
                semconv.METRIC_SPANLEDGER_BILLING_COST.description,
                labels=[_PERIOD, _WORKFLOW, _MODEL, _TENANT],
            )
            sql = engine.sql(
                "metrics/cost",
                label_limit=self._label_limit,
                tenant_limit=self._tenant_limit,
                value_length=self._value_length,
                other=engine.literal(OTHER),
            )
            for period, workflow, model, tenant, value in engine.rows(sql):
                cost.add_metric([period, workflow, model, tenant], _float(value))
            yield cost
            idle_cost = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_IDLE_COST),
                semconv.METRIC_SPANLEDGER_BILLING_IDLE_COST.description,
                labels=[_PERIOD, _RESOURCE_TYPE],
            )
            idle_hours = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_IDLE_ACCELERATOR_TIME),
                semconv.METRIC_SPANLEDGER_BILLING_IDLE_ACCELERATOR_TIME.description,
                labels=[_PERIOD, _RESOURCE_TYPE],
            )
            # NULL alone when no rule counts per instance: `IN (NULL)` matches nothing in either engine.
            per_instance = ", ".join(engine.literal(rule) for rule in self._per_instance_rules) or "NULL"
            for period, resource_type, cost_value, seconds in engine.rows(
                engine.sql("metrics/idle", per_instance_rules=per_instance)
            ):
                idle_cost.add_metric([period, resource_type], _float(cost_value))
                hours = None if seconds is None else seconds / _HOUR_SECONDS
                idle_hours.add_metric([period, resource_type], _float(hours))
            yield idle_cost
            yield idle_hours
            variance = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_ESTIMATE_VARIANCE),
                semconv.METRIC_SPANLEDGER_BILLING_ESTIMATE_VARIANCE.description,
                labels=[_PERIOD],
            )
            for period, value in engine.rows(engine.sql("metrics/variance")):
                variance.add_metric([period], _float(value))
            yield variance


def create_collector(
    store: Any, *, tenant_limit: int = 100, label_limit: int = 100, value_length: int = 128
) -> BillingCollector:
    """The collector the collector service registers on its Prometheus registry."""
    return BillingCollector(store, tenant_limit=tenant_limit, label_limit=label_limit, value_length=value_length)
