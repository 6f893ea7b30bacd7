"""Prometheus series from the current allocation run of each billing period.

Registered by the collector on its registry (``create_collector(store)``). Money is exposed as float
(Prometheus has no decimal); the exact figures are in the API and the allocation rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from spanledger import semconv

from .._telemetry import OTHER, label_name, prometheus_name
from ._rules import load_rules
from ._schema import has_table
from ._store_access import store_connection

__all__ = ["BillingCollector", "create_collector"]

logger = logging.getLogger("spanledger.collector")

_PERIOD = label_name(semconv.SPANLEDGER_BILLING_PERIOD)
_WORKFLOW = label_name(semconv.SPANLEDGER_WORKFLOW_NAME)
_MODEL = label_name(semconv.GEN_AI_REQUEST_MODEL)
_TENANT = label_name(semconv.SPANLEDGER_TENANT_ID)
_RESOURCE_TYPE = label_name(semconv.SPANLEDGER_RESOURCE_TYPE)


def _capped(column: str) -> str:
    """The label of ``column``: '' when NULL, itself when among the costliest kept values, else other."""
    return (
        f"CASE WHEN {column} IS NULL THEN '' WHEN {column} IN (SELECT {column} FROM kept_{column}) THEN {column} "
        "ELSE $other END"
    )


def _kept(column: str, limit: str) -> str:
    """The values of ``column`` that keep their own label: the costliest ``limit`` short enough (docs/schema.md)."""
    return f"""kept_{column} AS (
                     SELECT {column} FROM current WHERE {column} IS NOT NULL AND length({column}) <= $value_length
                     GROUP BY {column} ORDER BY sum(effective_cost) DESC, {column} LIMIT {limit})"""


class BillingCollector(Collector):
    """The billing gauges; each label from span data (workflow, model, tenant) keeps its costliest values."""

    def __init__(self, store: Any, *, tenant_limit: int = 100, label_limit: int = 100, value_length: int = 128) -> None:
        self._store = store
        self._tenant_limit = tenant_limit
        self._label_limit = label_limit
        self._value_length = value_length
        per_instance = [rule.id for rule in load_rules().rules if rule.capacity_per == "instance"]
        self._per_instance_rules = ", ".join(f"'{rule_id}'" for rule_id in per_instance) or "NULL"

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must never fail because of the billing tables
            logger.exception("billing metrics could not be read")

    def _collect(self) -> Iterator[Metric]:
        with store_connection(self._store) as connection:
            if not has_table(connection, "allocation_runs"):
                return
            cost = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_COST),
                semconv.METRIC_SPANLEDGER_BILLING_COST.description,
                labels=[_PERIOD, _WORKFLOW, _MODEL, _TENANT],
            )
            rows = connection.execute(
                f"""WITH current AS (
                     SELECT a.*, strftime(r.billing_period_start, '%Y-%m') AS period
                     FROM allocations a JOIN allocation_runs r USING (run_id)
                     WHERE r.superseded_by IS NULL AND a.trace_id IS NOT NULL),
                   {_kept("workflow", "$label_limit")},
                   {_kept("model", "$label_limit")},
                   {_kept("tenant", "$tenant_limit")}
                   SELECT period, {_capped("workflow")}, {_capped("model")}, {_capped("tenant")},
                          sum(effective_cost)::DOUBLE
                   FROM current GROUP BY ALL ORDER BY ALL""",
                {
                    "label_limit": self._label_limit,
                    "tenant_limit": self._tenant_limit,
                    "value_length": self._value_length,
                    "other": OTHER,
                },
            ).fetchall()
            for period, workflow, model, tenant, value in rows:
                cost.add_metric([period, workflow, model, tenant], value)
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
            rows = connection.execute(
                f"""SELECT strftime(r.billing_period_start, '%Y-%m'), coalesce(al.resource_type, ''),
                           sum(al.effective_cost - al.allocated_effective_cost)::DOUBLE,
                           sum((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds))
                               * CASE WHEN al.rule_id IN ({self._per_instance_rules}) THEN al.accelerators ELSE 1 END
                               / 3600)::DOUBLE
                    FROM allocation_lines al JOIN allocation_runs r USING (run_id)
                    WHERE r.superseded_by IS NULL AND al.kind = 'capacity'
                    GROUP BY ALL ORDER BY ALL"""
            ).fetchall()
            for period, resource_type, cost_value, hours in rows:
                idle_cost.add_metric([period, resource_type], cost_value)
                idle_hours.add_metric([period, resource_type], hours)
            yield idle_cost
            yield idle_hours
            variance = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_ESTIMATE_VARIANCE),
                semconv.METRIC_SPANLEDGER_BILLING_ESTIMATE_VARIANCE.description,
                labels=[_PERIOD],
            )
            rows = connection.execute(
                """SELECT strftime(r.billing_period_start, '%Y-%m'),
                          (sum(a.effective_cost) - sum(a.estimated_cost))::DOUBLE
                   FROM allocations a JOIN allocation_runs r USING (run_id)
                   WHERE r.superseded_by IS NULL AND a.trace_id IS NOT NULL AND a.estimated_cost IS NOT NULL
                   GROUP BY ALL ORDER BY ALL"""
            ).fetchall()
            for period, value in rows:
                variance.add_metric([period], value)
            yield variance


def create_collector(
    store: Any, *, tenant_limit: int = 100, label_limit: int = 100, value_length: int = 128
) -> BillingCollector:
    """The collector the collector service registers on its Prometheus registry."""
    return BillingCollector(store, tenant_limit=tenant_limit, label_limit=label_limit, value_length=value_length)
