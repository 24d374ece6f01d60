"""Start OSTAF Desktop."""

import sys

from ostaf_desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
