"""``python -m journey``: the same entry point as the ``journey`` console script."""

from journey.cli import main

raise SystemExit(main())
