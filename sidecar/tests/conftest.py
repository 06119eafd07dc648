"""Make the sidecar package, and the peers the tests share, importable."""

import sys
from pathlib import Path

FILES = Path(__file__).resolve().parents[1]
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
