"""The benchmarks' shared library.

  lab      the running lab: its constants, read from the lab inventory and
           the roles' defaults, and access to its containers
  conversation  the OpenFlow messages of the loopback benchmarks
  image    a throwaway container of the lab image, for the benchmarks that
           need no lab
  stats    medians, percentiles and spreads, and how they are printed
  results  results as data: written to and read from benchmarks/results/
  figures  figures drawn from those results (matplotlib, benchmark-only)

The sidecar's package (sidecar/) and, on the host, the collection itself
(as ansible_collections.sdn_ha.control_plane, through collections/) are
importable once this package is: the benchmarks speak OpenFlow, read
HAProxy and name the LBs' services through the product's own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "sidecar", ROOT / "lab", ROOT / "collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
