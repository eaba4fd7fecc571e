import sys

from nnpot.cli import main

sys.exit(main())
