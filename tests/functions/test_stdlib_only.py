"""functions/ is zipped as is for Function Compute: it may import only the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
# Function Compute runs python3.10: modules added to the standard library later are out too.
NEWER_THAN_310 = {"tomllib", "_tomllib", "wsgiref.types"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                roots.update({alias.name.split(".")[0], alias.name})
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.update({node.module.split(".")[0], node.module})
    return roots


def test_every_import_is_standard_library_or_functions() -> None:
    """Walk functions/*.py (parsed as 3.10): an import outside the 3.10 stdlib and `functions` fails."""
    files = sorted(FUNCTIONS.rglob("*.py"))
    assert files
    outside = {
        f"{path.name}: {root}"
        for path in files
        for root in _imported_roots(path)
        if ("." not in root and root != "functions" and root not in sys.stdlib_module_names)
        or root in NEWER_THAN_310
    }
    assert outside == set()
