"""bulk_sync: load CRM appointment spreadsheets (CSV/Excel) into SIRO's External API.

The pipeline, one module per stage: load -> mapping -> payload -> upload -> report, wired by
pipeline; cli is the command line, sandbox the SIRO emulator. See README.md.
"""

__version__ = "0.1.0"

import logging as _logging

# a library stays silent unless the application sets up logging (the CLI: --log-file)
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
