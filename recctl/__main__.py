"""``python -m recctl`` is the ``recctl`` command."""

from recctl.cli import main

main()
