# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """What each attribute of this collection's modules means.

    A module takes this fragment and states, in its own attributes, how far
    it supports each one (support and details).
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Whether the module runs under C(--check), reporting what it would
        change while changing nothing.
  diff_mode:
    description:
      - Whether the module shows, under C(--diff), what it changed or would
        change.
  platform:
    description:
      - The systems the module runs against.
"""

    # For the modules that only read.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - It changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
    details:
      - It changes nothing, so there is nothing to show.
"""

    # For the modules that change a Debian host (Open vSwitch, routes).
    DEBIAN_HOST = r"""
options: {}
attributes:
  platform:
    support: full
    platforms: debian
    details:
      - Debian 12 (bookworm) and 13 (trixie).
"""
