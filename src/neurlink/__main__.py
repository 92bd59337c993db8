"""``python -m neurlink``: the ``neurlink`` command line."""

import sys

from neurlink.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
