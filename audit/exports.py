"""CSV of audit events, streamed, with cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

CSV_COLUMNS = [
    "created_at",
    "action",
    "actor",
    "target_type",
    "target_id",
    "target",
    "org_id",
    "ip",
    "request_id",
    "details",
]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text a spreadsheet would read as a formula (= + - @, or a tab or carriage return first)
    gets a leading quote; numbers and empty cells stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header, then one line per event row (as audit.selectors presents it)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = [
            row["created_at"].isoformat(),
            row["action"],
            row["actor"],
            row["target_type"],
            row["target_id"],
            row["target"],
            row["org_id"],
            row["ip"],
            row["request_id"],
            json.dumps(row["metadata"], sort_keys=True, ensure_ascii=False) if row["metadata"] else "",
        ]
        yield writer.writerow([safe_cell(cell) for cell in cells])
