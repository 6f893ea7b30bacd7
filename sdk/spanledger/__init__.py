"""spanledger: make every AI output accountable."""

__all__: list[str] = []
