"""`python -m keyturn.cli`: the same entry point as the `keyturn` console script."""

import sys

from keyturn.cli import main

sys.exit(main())
