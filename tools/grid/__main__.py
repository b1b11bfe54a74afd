"""`python -m tools.grid`."""

import sys

from tools.grid.cli import main

sys.exit(main())
