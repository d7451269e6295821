import sys

from computegrid.cli import main

sys.exit(main())
