"""Start OSTAF Desktop."""

import sys

from ostaf_desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
