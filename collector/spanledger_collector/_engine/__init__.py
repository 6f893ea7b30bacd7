"""Usage extraction inside ClickHouse, over the OTel Collector's ``otel_traces`` (``spanledger clickhouse init``)."""
