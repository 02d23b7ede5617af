"""``python -m sauerkraut_rag.cli``: the same as the ``sauerkraut-rag`` command."""

from __future__ import annotations

import sys

from sauerkraut_rag.cli.main import main

sys.exit(main())
