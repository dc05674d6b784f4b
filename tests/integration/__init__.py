"""End-to-end tests of sua-audit against real model servers."""
