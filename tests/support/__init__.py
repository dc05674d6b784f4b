"""Helpers shared by tests: real servers started on loopback ports."""
