"""``python -m mm_broker.app.cli``: the ``mm-broker`` command."""

import sys

from mm_broker.app.cli import main

sys.exit(main())
