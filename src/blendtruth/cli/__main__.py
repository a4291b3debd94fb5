"""``python -m blendtruth.cli``."""

import sys

from blendtruth.cli.main import main

sys.exit(main())
