"""`python -m pyhash`: see `pyhash.cli`."""

from .cli import main

raise SystemExit(main())
