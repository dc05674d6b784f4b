"""Helpers shared by tests: real servers started on loopback ports, running the CLI (``cli``),
and the tiny test models (``models``)."""
