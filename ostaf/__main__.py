import sys

from ostaf.cli.main import main

sys.exit(main())
