"""`python -m bulk_sync` runs the command line."""

import sys

from .signals import hold

hold()  # first: a Ctrl-C or SIGTERM while the modules below are imported is noted, never a traceback

from .cli import main  # noqa: E402

sys.exit(main())
