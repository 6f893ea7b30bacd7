"""The spanledger collector: OTLP in, priced and stored, joined with the bill, OTLP and Prometheus out."""

__all__: list[str] = []
