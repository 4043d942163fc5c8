"""``python -m client`` runs the ``genre-client`` command line."""

from client.cli import main

raise SystemExit(main())
