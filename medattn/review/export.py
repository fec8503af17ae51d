"""What leaves the app as a spreadsheet file: every text cell of every export defused, so that a name or note
that starts like a formula (``=HYPERLINK(...)``, ``+1``, ``@SUM``) shows as text instead of running."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula; exported text is defused.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def defused(text: str) -> str:
    """Text a spreadsheet would run as a formula, prefixed with a quote so that it shows as text."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_text(header: list[str], rows: Iterable[list]) -> str:
    """Rows as CSV, every text cell defused (numbers and empty cells as they are)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([defused(cell) if isinstance(cell, str) else cell for cell in row] for row in rows)
    return buffer.getvalue()


def table_csv(table: pd.DataFrame) -> str:
    """A table as CSV, as ``csv_text`` writes it."""
    return csv_text(list(table.columns), table.itertuples(index=False, name=None))
