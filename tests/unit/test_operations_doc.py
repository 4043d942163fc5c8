"""The operations page answers "how do I set X": every server setting appears there by its
environment variable, so a field added to ``ServerConfig`` without a word for operators fails."""

from __future__ import annotations

import dataclasses

from server.config import ENV_PREFIX, ServerConfig
from tests.conftest import REPOSITORY_ROOT


def test_every_setting_is_documented_on_the_operations_page() -> None:
    page = (REPOSITORY_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    variables = [ENV_PREFIX + field.name.upper() for field in dataclasses.fields(ServerConfig)]
    assert len(variables) > 20
    assert [name for name in variables if f"`{name}`" not in page] == []
