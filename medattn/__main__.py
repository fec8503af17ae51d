"""``python -m medattn``: see medattn.cli."""

import sys

from medattn.cli import main

sys.exit(main())
