"""``python -m services.cli``: the same as the ``packloop`` console script."""

from services.cli import main

main()
