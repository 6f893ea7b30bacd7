"""Cost estimates at ingest: LLM tokens from genai-prices, cloud usage from the bundled price catalog."""

from ._catalog import PriceCatalog, load_catalog
from ._estimate import Estimate

__all__ = ["Estimate", "PriceCatalog", "load_catalog"]
