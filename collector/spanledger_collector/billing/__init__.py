"""Billing join: import billing exports, allocate them to usage facts, answer cost questions."""

__all__: list[str] = []
