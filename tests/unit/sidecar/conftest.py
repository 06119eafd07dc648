"""Make the sidecar package importable."""

import sys
from pathlib import Path

FILES = Path(__file__).resolve().parents[3] / "sidecar"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
