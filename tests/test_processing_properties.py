"""Whatever a file holds, processing accounts for every row exactly once."""

from __future__ import annotations

import csv
import io
import shutil

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from conftest import Template, sqlite_url
from group_orders.app import create_app
from group_orders.settings import Settings
from uploading import HEADER, good_row, state, upload

# Cells that break things: delimiters, quotes, line breaks, formula starts, non-ASCII,
# blanks, and values that are valid for one column and not another.
_tricky = st.sampled_from(
    [
        "",
        " ",
        ",",
        ";",
        '"',
        '""',
        "\n",
        "\r\n",
        "=1+1",
        "+49 30 901820",
        "@x",
        "ü",
        "DE",
        "SKU-1",
        "0",
        "2",
        "x" * 120,
        'Zoë, "Z"',
        "2026-13-45",
        "10115",
    ]
)
# Control characters are left to the tricky cells: a file full of them is refused as not
# being text, which the reader's own tests cover.
_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
_cell = st.one_of(_tricky, _text)
_row = st.fixed_dictionaries({column: _cell for column in HEADER})
_rows = st.lists(st.one_of(_row, st.builds(good_row, st.integers(1, 40))), max_size=25)


def _encode(rows: list[dict[str, str]]) -> tuple[bytes, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    records = 0
    for row in rows:
        cells = [row[column] for column in HEADER]
        writer.writerow(cells)
        if any(cell.strip() for cell in cells):
            records += 1
    return buffer.getvalue().encode(), records


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=_rows)
async def test_counts_add_up_and_no_row_is_lost(
    rows: list[dict[str, str]], sqlite_template: Template, tmp_path_factory: object
) -> None:
    # given: a fresh database for each example (on SQLite: a file copy per example is
    # cheap, and the property is about the processing, not the database)
    template = sqlite_template
    content, records = _encode(rows)
    root = tmp_path_factory.mktemp("property")  # type: ignore[attr-defined]
    source = make_url(template.database_url).database
    assert source is not None
    shutil.copyfile(source, root / "db.sqlite")
    app = create_app(
        Settings(database_url=sqlite_url(root / "db.sqlite"), data_dir=root, embedded_worker=False)
    )
    token = template.demo.tokens["client"]

    # when
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await upload(client, token, content)
            body = response.json()
            if body.get("errors"):
                # Only a file with no orders at all may be refused as a whole.
                assert records == 0, body
                assert body["errors"][0]["extensions"]["param"] == "file"
                return
            group_order_id = body["data"]["createGroupOrder"]["groupOrder"]["id"]
            await app.state.jobs.run_until_idle()
            final = await state(client, token, group_order_id)
            normalized = await client.get(final["normalizedCsv"])

    # then
    assert final["status"] == "completed"
    assert final["successfulOrders"] + final["rejectedOrders"] == final["totalOrders"]
    assert final["totalOrders"] == records
    listed = list(csv.DictReader(io.StringIO(normalized.text)))
    assert len(listed) == final["totalOrders"]
    assert len({row["source_row"] for row in listed}) == len(listed)
