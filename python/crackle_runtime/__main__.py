"""``python -m crackle_runtime`` is the ``crackle`` command."""

import sys

from crackle_runtime.cli import main

sys.exit(main())
