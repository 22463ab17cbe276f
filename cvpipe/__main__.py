"""``python -m cvpipe``: the same command line as the ``cvpipe`` console script."""
import sys

from cvpipe.cli import main

sys.exit(main())
