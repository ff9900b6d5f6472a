"""``python -m switchover.watch --qmp unix:PATH``: see :mod:`switchover.watch`."""
import sys

from . import main

sys.exit(main())
