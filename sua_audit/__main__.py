"""``python -m sua_audit`` runs the command line."""

from sua_audit.cli import main

main()
