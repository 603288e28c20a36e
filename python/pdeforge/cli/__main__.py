"""``python -m pdeforge.cli``: the ``pdeforge`` command."""

import sys

from pdeforge.cli import main

sys.exit(main())
