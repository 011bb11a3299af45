"""``python -m recctl`` is the ``recctl`` command."""

from recctl.cli import main

if __name__ == "__main__":  # (not when a helper process imports it)
    main()
