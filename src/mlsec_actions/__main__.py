import sys

from mlsec_actions.cli import main

sys.exit(main())
