"""``python -m model`` is the same as the ``nrmsim`` command."""

from model.cli import main

raise SystemExit(main())
