"""`python -m tools.campaign`."""

import sys

from tools.campaign.cli import main

sys.exit(main())
