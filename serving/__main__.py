"""``python -m serving`` runs the storeloop command line."""

import sys

from serving.cli import main

sys.exit(main())
