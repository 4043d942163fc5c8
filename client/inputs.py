"""Reads feature rows for the CLI from CSV or JSON and keeps only the columns a model takes.

Rows are read as raw cells first and converted to numbers only after the model's columns are
known, because the files people have carry text columns (``filename``, ``label``,
``Artist Name``) that are fine to drop but could never be numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

RawRow = dict[str, object]
"""One input row before conversion: column name to cell (str from CSV, any JSON value)."""


class InputError(ValueError):
    """The rows file cannot be used; the message names the row and column."""


def parse_rows(text: str) -> list[RawRow]:
    """Rows from CSV with a header line, or from JSON: a list of objects or ``{"rows": [...]}``.

    The format is told by the first character (``[`` or ``{`` is JSON), so stdin needs no flag.
    """
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return _json_rows(stripped)
    return _csv_rows(text)


def _json_rows(text: str) -> list[RawRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON: {error}") from error
    if isinstance(document, dict):
        if "rows" not in document:
            raise InputError('a JSON object must hold the rows under "rows"')
        document = document["rows"]
    if not isinstance(document, list):
        raise InputError("JSON rows must be a list of objects")
    rows: list[RawRow] = []
    for number, row in enumerate(document, start=1):
        if not isinstance(row, dict):
            raise InputError(f"row {number}: expected an object of name -> number")
        rows.append({str(name): value for name, value in row.items()})
    return rows


def _csv_rows(text: str) -> list[RawRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise InputError("CSV input has no header line")
    rows: list[RawRow] = []
    for number, record in enumerate(reader, start=1):
        if None in record:
            raise InputError(f"row {number}: more cells than the header has columns")
        rows.append(dict(record))
    return rows


def select_features(
    rows: Sequence[Mapping[str, object]], accepted: Sequence[str]
) -> tuple[list[dict[str, float]], list[str]]:
    """Keeps the ``accepted`` columns as floats and names the columns dropped.

    Empty CSV cells, JSON nulls and whitespace mean "omitted": the feature is left out of the
    row so the server imputes it when it can (or says which one it needs). Anything else in a
    kept column must be a number. Dropped names come in first-seen order.
    """
    wanted = set(accepted)
    dropped: dict[str, None] = {}
    selected: list[dict[str, float]] = []
    for number, row in enumerate(rows, start=1):
        features: dict[str, float] = {}
        for name, cell in row.items():
            if name not in wanted:
                dropped[name] = None
                continue
            value = _number(cell, number, name)
            if value is not None:
                features[name] = value
        selected.append(features)
    return selected, list(dropped)


def _number(cell: object, row: int, column: str) -> float | None:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, bool) or not isinstance(cell, int | float | str):
        raise InputError(f"row {row}, column {column!r}: {cell!r} is not a number")
    try:
        return float(cell)
    except ValueError:
        raise InputError(f"row {row}, column {column!r}: {cell!r} is not a number") from None


# Columns read as a row's track title, for models that take one, in order of preference.
TITLE_COLUMNS = ("title", "track name")


def title_column(rows: Sequence[Mapping[str, object]]) -> str | None:
    """The column holding track titles (``title`` or ``Track Name``, any case), or None."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    for wanted in TITLE_COLUMNS:
        for name in names:
            if name.strip().lower() == wanted:
                return name
    return None


def select_titles(rows: Sequence[Mapping[str, object]], column: str) -> list[str]:
    """Each row's title from ``column`` ("" where the cell is empty, null or absent)."""
    titles = []
    for number, row in enumerate(rows, start=1):
        cell = row.get(column)
        if cell is None:
            cell = ""
        if not isinstance(cell, str):
            raise InputError(f"row {number}, column {column!r}: {cell!r} is not text")
        titles.append(cell.strip())
    return titles
