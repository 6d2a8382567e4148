"""``python -m include.cli`` is ``setlist``."""

import sys

from include.cli.main import main

sys.exit(main())
