"""``python -m optel``: the same as the ``optel`` command."""

import sys

from .cli import main

sys.exit(main())
