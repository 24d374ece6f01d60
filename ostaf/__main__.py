import sys

from ostaf.cli import main

sys.exit(main())
