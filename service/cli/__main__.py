"""``python -m service.cli``: the same as the ``streetwatch`` console script."""

from __future__ import annotations

import sys

from service.cli import main

sys.exit(main())
