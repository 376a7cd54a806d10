"""Text the API accepts from callers: names, case ids, reasons, filters.

PostgreSQL cannot store a NUL character in a text column (the driver refuses the whole statement), and
control characters or lone UTF-16 surrogates have no place in a name either; both databases must behave
the same. So every free-text input goes through one of these types, which refuse such characters with a
422 at the edge, before any SQL runs:

- ``PlainText``: names, ids and filters: no control characters at all (C0, DEL, C1) and no surrogates.
- ``FreeText``: longer prose (a search's reason): tabs and line breaks are allowed, nothing else of those.

Use them inside ``Annotated`` with the field's own bounds, e.g.
``Annotated[PlainText, Field(min_length=1, max_length=200)]`` or ``Annotated[PlainText | None, Query(...)]``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _describe(char: str) -> str:
    return "NUL" if char == "\x00" else f"U+{ord(char):04X}"


def plain_text(value: str) -> str:
    """``value`` when it holds no control character or surrogate; ValueError (a 422) otherwise."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(
            f"must not contain control characters (found {_describe(found.group())} at {found.start()})"
        )
    return value


def free_text(value: str) -> str:
    """``value`` when its only control characters are tabs and line breaks; ValueError otherwise."""
    found = CONTROL_BUT_WHITESPACE.search(value)
    if found:
        raise ValueError(
            "must not contain control characters other than tabs and line breaks "
            f"(found {_describe(found.group())} at {found.start()})"
        )
    return value


def has_control_characters(value: str) -> bool:
    """Whether ``value`` would be refused as ``PlainText``."""
    return CONTROL.search(value) is not None


PlainText = Annotated[str, AfterValidator(plain_text)]
FreeText = Annotated[str, AfterValidator(free_text)]
