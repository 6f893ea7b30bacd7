"""Prometheus series from the current allocation run of each billing period.

Registered by the collector on its registry (``create_collector(store)``). Money is exposed as float
(Prometheus has no decimal); the exact figures are in the API and the allocation rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import resources
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


def _query(name: str) -> str:
    return (
        resources.files("spanledger_collector.billing")
        .joinpath("sql")
        .joinpath(f"{name}.sql")
        .read_text(encoding="utf-8")
    )


_COST = _query("metrics_cost")
_IDLE = _query("metrics_idle")
_VARIANCE = _query("metrics_variance")


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
            if not has_table(connection, "allocation_runs"):
                return
            cost = GaugeMetricFamily(
                prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_COST),
                semconv.METRIC_SPANLEDGER_BILLING_COST.description,
                labels=[_PERIOD, _WORKFLOW, _MODEL, _TENANT],
            )
            rows = connection.execute(
                _COST,
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
            rows = connection.execute(_IDLE, {"per_instance_rules": self._per_instance_rules}).fetchall()
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
            rows = connection.execute(_VARIANCE).fetchall()
            for period, value in rows:
                variance.add_metric([period], value)
            yield variance


def create_collector(
    store: Any, *, tenant_limit: int = 100, label_limit: int = 100, value_length: int = 128
) -> BillingCollector:
    """The collector the collector service registers on its Prometheus registry."""
    return BillingCollector(store, tenant_limit=tenant_limit, label_limit=label_limit, value_length=value_length)
