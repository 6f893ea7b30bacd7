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

from .._telemetry import OTHER_TENANT, label_name, prometheus_name
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


class BillingCollector(Collector):
    def __init__(self, store: Any, *, tenant_limit: int = 100) -> None:
        self._store = store
        self._tenant_limit = tenant_limit
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
                """WITH current AS (
                     SELECT a.*, strftime(r.billing_period_start, '%Y-%m') AS period
                     FROM allocations a JOIN allocation_runs r USING (run_id)
                     WHERE r.superseded_by IS NULL AND a.trace_id IS NOT NULL),
                   kept AS (SELECT tenant FROM current WHERE tenant IS NOT NULL GROUP BY tenant
                            ORDER BY sum(effective_cost) DESC, tenant LIMIT ?)
                   SELECT period, coalesce(workflow, ''), coalesce(model, ''),
                          CASE WHEN tenant IS NULL THEN '' WHEN tenant IN (SELECT tenant FROM kept) THEN tenant
                               ELSE ? END AS tenant_label,
                          sum(effective_cost)::DOUBLE
                   FROM current GROUP BY ALL ORDER BY ALL""",
                [self._tenant_limit, OTHER_TENANT],
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


def create_collector(store: Any, *, tenant_limit: int = 100) -> BillingCollector:
    """The collector the collector service registers on its Prometheus registry."""
    return BillingCollector(store, tenant_limit=tenant_limit)
