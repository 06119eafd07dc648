# Copyright: sdn_ha contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn `ovs-vsctl --format=json list TABLE` output into plain records."""

from __future__ import annotations

import json


def _value(cell):
    """OVSDB JSON cells are atoms, ["set", [...]], ["map", [[k, v], ...]] or ["uuid", id]."""
    if isinstance(cell, list) and len(cell) == 2 and cell[0] in ("set", "map", "uuid", "named-uuid"):
        kind, body = cell
        if kind == "map":
            return {str(k): _value(v) for k, v in body}
        if kind == "set":
            return [_value(v) for v in body]
        return body
    return cell


def ovs_records(text: str) -> list[dict]:
    """One dict per row, keyed by column heading."""
    table = json.loads(text) if isinstance(text, str) else text
    return [dict(zip(table["headings"], map(_value, row), strict=True)) for row in table.get("data", [])]
