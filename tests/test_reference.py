"""The committed schema and reference docs are generated from the code and match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from group_orders.reference_docs import REFERENCE_DOCS
from group_orders.schema.query import build_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_matches_the_code() -> None:
    # when
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")

    # then: run `group-orders export-schema -o schema.graphql` after changing the schema
    assert committed == build_schema().as_str() + "\n"


@pytest.mark.parametrize("name", sorted(REFERENCE_DOCS))
def test_reference_doc_matches_the_code(name: str) -> None:
    # when
    committed = (ROOT / "docs" / name).read_text(encoding="utf-8")

    # then: run `group-orders export-docs` after changing the registry or the views
    assert committed == REFERENCE_DOCS[name]()


def test_errors_doc_lists_every_code_with_its_status() -> None:
    # given
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")

    # then: spot-check rows a reader looks for
    assert "| `session-expired` | 401 |" in text
    assert "| `route-non-existent` | 500 |" in text
    assert "| `payload-too-large` | 413 |" in text


def test_views_doc_keeps_the_seed_spelling() -> None:
    # given
    text = (ROOT / "docs" / "views.md").read_text(encoding="utf-8")

    # then
    assert "`inital_upload`" in text
    assert "| `queueJobId` |  |  | yes |  |" in text
