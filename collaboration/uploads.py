"""What an attachment may be: its size and its type, judged by name and by content.

The type is the file name's extension, which must be on `GNDP_ATTACHMENT_TYPES`, and the
first bytes must be that type's signature (text must be UTF-8 without NUL bytes): a
renamed executable is refused. The client's Content-Type is never trusted, and downloads
are always served as `application/octet-stream` with `nosniff`.
"""

from __future__ import annotations

import os
import unicodedata

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.text import get_valid_filename

from processes.errors import InvalidInput

ZIP = (b"PK\x03\x04",)
SIGNATURES: dict[str, tuple[bytes, ...] | None] = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "docx": ZIP,
    "xlsx": ZIP,
    "txt": None,  # text: checked as UTF-8
    "csv": None,
}
CONTENT_TYPES = {
    "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "txt": "text/plain", "csv": "text/csv",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A multipart body carries the file and a little more (boundaries, headers, fields).
MULTIPART_OVERHEAD = 64 * 1024


def max_bytes() -> int:
    return settings.GNDP_ATTACHMENT_MAX_BYTES


def allowed_types() -> list[str]:
    return [ext for ext in settings.GNDP_ATTACHMENT_TYPES if ext in SIGNATURES]


def too_large(size: int) -> InvalidInput:
    return InvalidInput(f"the file is larger than {filesizeformat(max_bytes())}",
                        details={"file": f"at most {max_bytes()} bytes"}, code="file_too_large")


def refuse_oversized_body(content_length: str | None) -> None:
    """Refuse a request body that cannot hold an allowed file before reading any of it."""
    try:
        length = int(content_length or 0)
    except ValueError:
        return
    if length > max_bytes() + MULTIPART_OVERHEAD:
        raise too_large(length)


def clean_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", os.path.basename((name or "").replace("\\", "/"))).strip()
    try:
        cleaned = get_valid_filename(name)
    except Exception:  # noqa: BLE001 - SuspiciousFileOperation for names like ".."
        cleaned = ""
    return cleaned[-200:] if cleaned else "file"


def check(upload) -> tuple[str, str]:
    """(file name, content type) of an acceptable upload; InvalidInput (400) otherwise."""
    if upload is None:
        raise InvalidInput("no file was sent", details={"file": "send the file as multipart field `file`"})
    if upload.size > max_bytes():
        raise too_large(upload.size)
    if upload.size == 0:
        raise InvalidInput("the file is empty", details={"file": "empty"})
    filename = clean_filename(upload.name)
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    allowed = allowed_types()
    if ext not in allowed:
        raise InvalidInput(f"files of type {ext or '(none)'!r} are not allowed",
                           details={"file": f"allowed types: {', '.join(allowed)}"}, code="file_type_not_allowed")
    upload.seek(0)
    signatures = SIGNATURES[ext]
    if signatures is None:
        content = upload.read()
        upload.seek(0)
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            content = b"\x00"
        if b"\x00" in content:
            raise InvalidInput(f"the file is not {ext} text", details={"file": "not UTF-8 text"},
                               code="file_type_mismatch")
    else:
        head = upload.read(16)
        upload.seek(0)
        if not head.startswith(signatures):
            raise InvalidInput(f"the content is not a {ext} file", details={"file": f"not a {ext} file"},
                               code="file_type_mismatch")
    return filename, CONTENT_TYPES[ext]
