"""``python -m pacs_cli``: the ``pacs`` command."""

from pacs_cli.cli import main

main()
