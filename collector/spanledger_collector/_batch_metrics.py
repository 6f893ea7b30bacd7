"""Histogram and counter families fed a batch at a time, exposed through one prometheus-client ``Collector``.

prometheus-client's ``labels(...).observe()`` takes a lock and scans the buckets in Python for every
observation. Here a whole request's observations of one series are merged at once, each value bisected into
the bucket bounds in one C loop (in Python: the values sorted once, only the bounds between the smallest and
the largest bisected into them), and the caller holds the collector's one lock for the whole batch. The
exposition is what prometheus-client's own ``Histogram``/``Counter`` give for the same observations
(``tests/test_collector_batch_metrics.py``).

:func:`group_columns` and the histograms' bucket counting are ``_grouping.c``'s (``COMPILED``) where it is built:
one C loop each. ``_group_columns`` and ``_histogram_add`` are their Python references and the fallback
(tests/test_collector_grouping.py compares the two).
"""

from __future__ import annotations

import contextlib
import os
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

__all__ = [
    "COMPILED",
    "DEFAULT_SERIES_LIMIT",
    "OVERFLOW",
    "BatchCounter",
    "BatchHistogram",
    "BatchMetrics",
    "group_columns",
]

OVERFLOW = "other"
"""Every label of the series that takes the observations of label sets past a family's ``series_limit``."""
DEFAULT_SERIES_LIMIT = 1000


def _group_columns(
    key: tuple[int, ...], columns: tuple[int, ...], items: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], tuple[list[Any], ...]]:
    """``items`` grouped by their fields at the ``key`` indexes (groups in order of first appearance); per group,
    one list per index in ``columns``: that field of the group's items, in order, None left out."""
    groups: dict[tuple[Any, ...], tuple[list[Any], ...]] = {}
    for item in items:
        labels = tuple([item[index] for index in key])
        group = groups.get(labels)
        if group is None:
            group = groups[labels] = tuple([] for _ in columns)
        for column, index in zip(group, columns, strict=True):
            value = item[index]
            if value is not None:
                column.append(value)
    return groups


def _histogram_add(bounds: tuple[float, ...], counts: list[int], values: Sequence[float], total: float) -> float:
    """Counts each value but NaN into its bucket, the first of ``bounds`` (sorted, the last one inf) at or above
    it; returns ``sum(values, total)``."""
    total = sum(values, total)
    if total != total:  # a NaN: like prometheus-client, it goes into the sum but into no bucket
        values = [value for value in values if value == value]
    if not values:
        return total
    ordered = sorted(values)
    # A value's bucket is the first bound at or above it (bisect_left). Buckets below the smallest value's
    # and above the largest value's get none, so only the bounds in between (few, with exponential
    # buckets) are bisected into the sorted values.
    first = bisect_left(bounds, ordered[0])
    last = bisect_left(bounds, ordered[-1], first)
    counted = 0
    for bucket in range(first, last):
        up_to_bound = bisect_right(ordered, bounds[bucket], counted)
        counts[bucket] += up_to_bound - counted
        counted = up_to_bound
    counts[last] += len(ordered) - counted
    return total


COMPILED: Any = None
"""``_grouping.c``: None where it is not built or ``SPANLEDGER_NO_SPEEDUPS`` is set."""
if not os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
    with contextlib.suppress(ImportError):  # not built
        from . import _grouping as COMPILED  # type: ignore[attr-defined, no-redef]
group_columns: Callable[
    [tuple[int, ...], tuple[int, ...], Sequence[tuple[Any, ...]]], dict[tuple[Any, ...], tuple[list[Any], ...]]
] = _group_columns if COMPILED is None else COMPILED.group_columns


class _HistogramSeries:
    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets  # per bucket, not cumulative: a batch touches only its values' buckets
        self.sum = 0.0


class BatchHistogram:
    """A labelled histogram; ``observe`` adds many values of one series. The caller holds ``BatchMetrics.lock``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets not in sorted order")
        if bounds[0] < 0:  # prometheus-client then drops _sum but keeps _count; HistogramMetricFamily drops both
            raise ValueError(f"{name}: negative bucket bounds are not supported")
        if bounds[-1] != INF:
            bounds.append(INF)
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series_limit = DEFAULT_SERIES_LIMIT
        self._bounds = tuple(bounds)
        self._add: Callable[[tuple[float, ...], list[int], Sequence[float], float], float] = (
            COMPILED.histogram_add if COMPILED is not None and len(bounds) <= COMPILED.MAX_BUCKETS else _histogram_add
        )
        self._le = tuple(floatToGoString(bound) for bound in bounds)  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], _HistogramSeries] = {}

    def observe(self, labels: tuple[str, ...], values: Sequence[float]) -> None:
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= self.series_limit:
                labels = (OVERFLOW,) * len(self.labelnames)
                series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _HistogramSeries(len(self._bounds))
        series.sum = self._add(self._bounds, series.counts, values, series.sum)

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in self._series.items():
            cumulative = map(float, accumulate(series.counts))
            family.add_metric(labels, list(zip(self._le, cumulative, strict=True)), series.sum)
        return family


class BatchCounter:
    """A labelled counter; ``add`` adds one series' batch total. The caller holds ``BatchMetrics.lock``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series_limit = DEFAULT_SERIES_LIMIT
        self._totals: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...], amount: float) -> None:
        if amount < 0:  # a counter never goes down (prometheus-client raises); drop it rather than fail the request
            return
        total = self._totals.get(labels)
        if total is None:
            total = 0.0
            if len(self._totals) >= self.series_limit:
                labels = (OVERFLOW,) * len(self.labelnames)
                total = self._totals.get(labels, 0.0)
        self._totals[labels] = total + amount

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, total in self._totals.items():
            family.add_metric(labels, total)
        return family


class BatchMetrics(Collector):
    """Exposes its families at scrape time. Writers hold ``lock`` for a whole batch; ``collect`` holds it too."""

    def __init__(self, families: Sequence[BatchHistogram | BatchCounter]) -> None:
        self.lock = threading.Lock()
        self._families = tuple(families)

    def limit_series(self, limit: int) -> None:
        """Keep at most ``limit`` label sets per family (one more: the all-:data:`OVERFLOW` series)."""
        with self.lock:
            for family in self._families:
                family.series_limit = limit

    def collect(self) -> list[HistogramMetricFamily | CounterMetricFamily]:
        with self.lock:
            return [family.family() for family in self._families]
