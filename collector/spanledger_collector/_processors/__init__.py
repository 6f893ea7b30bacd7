"""Processors: each a factory (typed config, read and checked at load) and the instances pipelines chain.

``memory_limiter`` (refuse while memory is short), ``filter`` (drop matching spans), ``spanledger_usage``
(usage facts and data reads), ``spanledger_cost`` (prices them) and ``batch`` (how requests reach the
store writer). Each instance sees a :class:`PipelineItem`, in the order its pipeline lists it.
"""

from ._batch import BatchFactory, BatchProcessor
from ._cost import CostFactory, CostProcessor, CostSettings
from ._filter import FilterFactory, FilterProcessor, FilterSettings
from ._item import PipelineItem, Processor
from ._memory_limiter import MemoryLimiter, MemoryLimiterFactory, rss_bytes
from ._usage import UsageFactory, UsageProcessor, UsageSettings, decode_or_refuse

__all__ = [
    "BatchFactory",
    "BatchProcessor",
    "CostFactory",
    "CostProcessor",
    "CostSettings",
    "FilterFactory",
    "FilterProcessor",
    "FilterSettings",
    "MemoryLimiter",
    "MemoryLimiterFactory",
    "PipelineItem",
    "Processor",
    "UsageFactory",
    "UsageProcessor",
    "UsageSettings",
    "decode_or_refuse",
    "rss_bytes",
]
