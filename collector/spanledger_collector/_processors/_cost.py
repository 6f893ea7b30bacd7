"""The ``spanledger_cost`` processor: prices the usage facts ``spanledger_usage`` found, at ingest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .._component import ConfigError, NothingToStart
from .._config import LoadContext
from .._config_reader import ConfigSection
from .._pricing import PriceCatalog, load_catalog
from .._store import UsageFact, with_estimate
from ._item import PipelineItem

__all__ = ["CostFactory", "CostProcessor", "CostSettings"]

logger = logging.getLogger("spanledger.collector")


@dataclass(frozen=True)
class CostSettings:
    price_overrides: Path | None = None
    """A price catalog file (negotiated rates) layered over the bundled catalog and genai-prices."""


class CostProcessor(NothingToStart):
    def __init__(self, component_id: str, catalog: PriceCatalog) -> None:
        self.component_id = component_id
        self.catalog = catalog

    def _failed(self, fact: UsageFact, error: Exception) -> UsageFact:
        # Called by priced_all while it handles the error, so the log has its traceback.
        logger.exception("pricing %s of span %s failed", fact.meter, fact.span_id)
        return with_estimate(fact, None, None, None, f"pricing failed: {error}")

    def process(self, item: PipelineItem) -> None:
        if item.facts:
            # priced_all: each fact with its estimate's cost (at the store's scale), currency, catalog_version
            # and unpriced_reason (set whenever cost is None). In place: what was derived from the list so
            # far (the usage metrics to record) sees the prices.
            item.facts[:] = self.catalog.priced_all(item.facts, self._failed)
        item.priced = True


class CostFactory:
    type = "spanledger_cost"
    signals: tuple[str, ...] = ("traces",)
    after: tuple[str, ...] = ("spanledger_usage",)

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> CostSettings:
        overrides = section.text("price_overrides")
        if overrides is None:
            return CostSettings()
        if not Path(overrides).is_file():
            raise section.fail("price_overrides", f"file {overrides} does not exist")
        try:  # read and checked now, not when the first span arrives
            load_catalog(Path(overrides))
        except ConfigError as error:
            raise section.fail("price_overrides", str(error)) from None
        return CostSettings(Path(overrides))

    def create(self, component_id: str, config: CostSettings) -> CostProcessor:
        return CostProcessor(component_id, load_catalog(config.price_overrides))
