"""``python hack/localcluster up|env`` (or ``python -m localcluster`` with hack/ on the path)."""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory: Python put the package's own dir on the path, where its modules would
    # shadow top-level ones. The package is imported from hack/ instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from localcluster.cli import main

sys.exit(main())
