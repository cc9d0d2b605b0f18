"""The JSON summary of a dry run: ``dispatcher check --json``, and the API's preview and create."""

from __future__ import annotations

from typing import Any

from dispatcher import chunker
from dispatcher.contacts.ingest import IngestResult


def summary(
    result: IngestResult, chunks: list[chunker.PlannedChunk], shown: int | None = None
) -> dict[str, Any]:
    """The JSON object of ``check --json``: ``rejected`` lists every rejected row, or the first
    ``shown`` of them (``rejected_count`` says how many there are)."""
    rejected = result.rejected if shown is None else result.rejected[:shown]
    return {
        "file": str(result.path),
        "sheet": result.sheet,
        "header_row": result.header_row,
        "phone_column": result.phone_column,
        "rows": result.rows,
        "valid": result.valid,
        "invalid": result.invalid,
        "duplicates": result.duplicates,
        "opted_out": result.opted_out,
        "messages": len(result.messages),
        "segments": result.segments,
        "requests": len(chunks),
        "by_method": chunker.by_method(chunks),
        "not_gb2312": len(result.not_gb2312),
        "warnings": result.warnings,
        "rejected_count": len(result.rejected),
        # Phone cells holding two numbers or more: sent to the first, or (--each-number) to each.
        "several_numbers": [
            {
                "row": row,
                "column": result.phone_column,
                "numbers": list(numbers),
                "sent_to": list(numbers) if result.each_number else list(numbers[:1]),
            }
            for row, numbers in result.several
        ],
        "rejected": [
            {"row": r.row, "column": r.column, "value": r.value, "reason": r.reason, "kind": str(r.kind)}
            for r in rejected
        ],
    }
