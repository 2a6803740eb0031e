"""Large multipart uploads streamed straight to disk, with the size limit enforced while the body arrives.

Starlette's form parser spools every file part to a temporary file first and has no limit on file parts; a drone
flight is gigabytes, so ``POST /api/v1/flights`` parses the body itself with python-multipart (the streaming
parser Starlette uses): each file part is written to its final place as it arrives, the body is counted as it
streams, and the request is refused (`UploadTooLarge`, 413) as soon as it passes the limit, before the rest is
read. What was written is then the caller's to remove.

Example:
    >>> upload = await receive_multipart(request, Path("/data/flights/f-1/input"), max_bytes=8 << 30,
    ...                                  file_name=lambda field, filename: field + ".bin",
    ...                                  text_fields={"name"})  # doctest: +SKIP
    >>> upload.files["video"].path, upload.fields["name"]  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

__all__ = ["MultipartUpload", "UploadRejected", "UploadTooLarge", "UploadedFile", "receive_multipart"]


class UploadTooLarge(Exception):
    """The body exceeds the limit (answer 413)."""

    def __init__(self, max_bytes: int, declared: int | None = None):
        self.max_bytes = max_bytes
        self.declared = declared
        what = f"{declared} bytes" if declared is not None else "the upload"
        super().__init__(f"{what} exceeds the limit of {max_bytes} bytes")


class UploadRejected(Exception):
    """A malformed or unacceptable part (answer 422 naming `field`)."""

    def __init__(self, field: str, msg: str):
        self.field = field
        self.msg = msg
        super().__init__(f"{field}: {msg}")


@dataclass(frozen=True)
class UploadedFile:
    """A file part, written to `path`.

    Attributes:
        field: The form field name.
        filename: The name the client gave (as sent; never used as a path).
        path: Where it was written.
        size_bytes: Its size.
    """

    field: str
    filename: str
    path: Path
    size_bytes: int


@dataclass
class MultipartUpload:
    """The parts of a multipart body: text fields by name, files by field name."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    out: IO[bytes] | None = None
    path: Path | None = None
    size: int = 0


async def receive_multipart(request: Request, dest_dir: Path, *, max_bytes: int,
                            file_name: Callable[[str, str], str], text_fields: set[str],
                            max_text_bytes: int = 4096) -> MultipartUpload:
    """Parse a ``multipart/form-data`` body, writing file parts under `dest_dir` as they stream in.

    Args:
        request: The request (its body is consumed).
        dest_dir: Folder the files are written to (created).
        max_bytes: Largest accepted body (everything: files, fields, multipart framing).
        file_name: ``(field, client filename) -> stored file name`` for each file part; it raises
            `UploadRejected` for a field or file type that is not accepted (checked before any byte is written).
        text_fields: The accepted text fields.
        max_text_bytes: Largest text field.

    Raises:
        UploadTooLarge: The body (declared by Content-Length, or as counted) exceeds `max_bytes`.
        UploadRejected: Not multipart, no boundary, an unknown or repeated field, a bad file name or type.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRejected("content-type", "must be multipart/form-data with a boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadTooLarge(max_bytes, int(declared))
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"

    upload = MultipartUpload()
    state = {"part": _Part(), "header_name": b"", "header_value": b""}
    pending_writes: list[tuple[_Part, bytes]] = []
    finished: list[_Part] = []
    opened: list[_Part] = []

    def decode(value: bytes) -> str:
        return value.decode(charset, errors="replace")

    def on_part_begin() -> None:
        state["part"] = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["part"].headers.append((state["header_name"].lower(), state["header_value"]))
        state["header_name"], state["header_value"] = b"", b""

    def on_headers_finished() -> None:
        part = state["part"]
        disposition = next((v for k, v in part.headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise UploadRejected("body", "a part without a Content-Disposition name")
        part.name = decode(options[b"name"])
        if part.name in upload.fields or part.name in upload.files or any(p.name == part.name for p in opened):
            raise UploadRejected(part.name, "given twice")
        if b"filename" in options:
            part.filename = decode(options[b"filename"])
            stored = file_name(part.name, part.filename)
            dest_dir.mkdir(parents=True, exist_ok=True)
            part.path = dest_dir / stored
            part.out = open(part.path, "wb")  # noqa: SIM115 - closed in on_part_end or on error
            opened.append(part)
        elif part.name not in text_fields:
            raise UploadRejected(part.name, f"unknown field (accepted: {', '.join(sorted(text_fields))} and the "
                                            f"files)")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = state["part"]
        chunk = data[start:end]
        if part.out is None:
            if len(part.data) + len(chunk) > max_text_bytes:
                raise UploadRejected(part.name, f"longer than {max_text_bytes} bytes")
            part.data.extend(chunk)
        else:
            part.size += len(chunk)
            pending_writes.append((part, bytes(chunk)))

    def on_part_end() -> None:
        part = state["part"]
        if part.out is None:
            upload.fields[part.name] = decode(bytes(part.data))
        else:
            finished.append(part)

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})

    def flush() -> None:
        # File writes run in a worker thread (a blocking write must not stall the event loop).
        for part, chunk in pending_writes:
            assert part.out is not None
            part.out.write(chunk)
        for part in finished:
            assert part.out is not None and part.path is not None and part.filename is not None
            part.out.close()
            upload.files[part.name] = UploadedFile(part.name, part.filename, part.path, part.size)

    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise UploadTooLarge(max_bytes)
            parser.write(chunk)
            if pending_writes or finished:
                await run_in_threadpool(flush)
                pending_writes.clear()
                finished.clear()
        parser.finalize()
    except (UploadTooLarge, UploadRejected):
        raise
    except MultipartParseError as exc:
        raise UploadRejected("body", f"not a valid multipart body ({exc})") from None
    finally:
        for part in opened:
            if part.out is not None and not part.out.closed:
                part.out.close()
    unfinished = [p.name for p in opened if p.name not in upload.files]
    if unfinished:
        raise UploadRejected(unfinished[0], "the body ended inside this part")
    return upload
