"""`python tests/docs/reference.py [--write]`: the command README.md's generated sections name. The
generator itself lives in tests.support.reference."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.reference import main

    sys.exit(main(sys.argv))
