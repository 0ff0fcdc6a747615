"""The result files written by a second process, so they cost no time of the job's own.

Writing the two workbooks is most of a job's work (xlsxwriter is pure Python, about
70 µs a row). In a process of its own it runs on the machine's second core while the
job reads, validates and stores the next rows; the job sends it each batch of results as
one JSON message over a pipe.

If the job's process dies, the writer reads the end of its pipe, removes its temporary
files and exits: nothing half-written is ever published.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Self

import orjson

from group_orders.services.ingest.model import (
    RowError,
    RowErrorCode,
    RowResult,
    RowStatus,
)
from group_orders.services.ingest.result_files import ResultFileWriter, ResultKeys
from group_orders.storage.base import Storage


class WriterProcessError(RuntimeError):
    """The writer process failed or went away; the files were not published."""


def _encode(results: Sequence[RowResult]) -> bytes:
    return orjson.dumps(
        [
            [
                result.source_row,
                result.status.value,
                result.cells,
                result.normalized,
                [[e.code.value, e.field, e.value, e.message] for e in result.errors],
            ]
            for result in results
        ]
    )


def _decode(message: bytes) -> list[RowResult]:
    return [
        RowResult(
            source_row=source_row,
            status=RowStatus(status),
            cells=tuple(cells),
            normalized=normalized,
            errors=[
                RowError(RowErrorCode(code), field, value, text)
                for code, field, value, text in errors
            ],
        )
        for source_row, status, cells, normalized, errors in orjson.loads(message)
    ]


def _serve(
    connection: Connection,
    storage: Storage,
    keys: ResultKeys,
    header: Sequence[str],
    max_sheet_rows: int,
) -> None:
    writer = ResultFileWriter(storage, keys, header, max_sheet_rows=max_sheet_rows)
    try:
        while True:
            kind, payload = connection.recv()
            if kind == "rows":
                for result in _decode(payload):
                    writer.write(result)
            elif kind == "publish":
                writer.publish()
                connection.send(("ok", None))
                return
            else:
                writer.abort()
                connection.send(("ok", None))
                return
    except EOFError:
        # The job's process is gone: publish nothing.
        writer.abort()
    except Exception as error:
        writer.abort()
        connection.send(("error", f"{type(error).__name__}: {error}"))


class ResultFilesInProcess:
    """The same interface, written in this process: for small files, where starting a
    process would cost more than it saves."""

    def __init__(
        self,
        storage: Storage,
        keys: ResultKeys,
        source_header: Sequence[str],
        *,
        max_sheet_rows: int,
    ) -> None:
        self._writer = ResultFileWriter(storage, keys, source_header, max_sheet_rows=max_sheet_rows)

    def write_batch(self, results: Sequence[RowResult]) -> None:
        for result in results:
            self._writer.write(result)

    def publish(self) -> None:
        self._writer.publish()

    def abort(self) -> None:
        self._writer.abort()


class ResultFilesProcess:
    """``ResultFileWriter``'s interface (``write_batch``, ``publish``, ``abort``), run in
    a child process."""

    def __init__(
        self,
        storage: Storage,
        keys: ResultKeys,
        source_header: Sequence[str],
        *,
        max_sheet_rows: int,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            # The storage goes over pickled: an object store's client is made anew there.
            args=(child, storage, keys, tuple(source_header), max_sheet_rows),
            name="group-orders result files",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._finished = False

    def write_batch(self, results: Sequence[RowResult]) -> None:
        try:
            self._connection.send(("rows", _encode(results)))
        except (BrokenPipeError, EOFError, OSError):
            raise WriterProcessError(self._failure()) from None

    def _finish(self, kind: str) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._connection.send((kind, None))
            status, detail = self._connection.recv()
        except (BrokenPipeError, EOFError, OSError):
            status, detail = "error", self._failure()
        finally:
            self._process.join(timeout=60)
            self._connection.close()
        if status != "ok":
            raise WriterProcessError(detail)

    def _failure(self) -> str:
        if self._connection.poll():
            with_detail: Any = self._connection.recv()
            return str(with_detail[1])
        return "the result file writer process exited"

    def publish(self) -> None:
        self._finish("publish")

    def abort(self) -> None:
        try:
            self._finish("abort")
        except WriterProcessError:
            pass
        if self._process.is_alive():
            self._process.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None or not self._finished:
            self.abort()


ResultFiles = ResultFilesInProcess | ResultFilesProcess


def result_files(
    storage: Storage,
    keys: ResultKeys,
    source_header: Sequence[str],
    *,
    max_sheet_rows: int,
    expected_rows: int,
    process_from_rows: int,
) -> ResultFiles:
    """A writer of the result files: in a second process once the file is large enough
    for the parallel work to pay for starting it."""
    kind = ResultFilesProcess if expected_rows >= process_from_rows else ResultFilesInProcess
    return kind(storage, keys, source_header, max_sheet_rows=max_sheet_rows)
