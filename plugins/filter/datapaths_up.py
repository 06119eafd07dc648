# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.sdn_ha.control_plane.plugins.plugin_utils.status import datapaths_up


class FilterModule:
    def filters(self):
        return {"datapaths_up": datapaths_up}
