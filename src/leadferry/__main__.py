"""``python -m leadferry``: the same as the ``leadferry`` command."""

from leadferry.cli import main

main()
