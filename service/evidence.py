"""Evidence files of cases: content hashes and the URLs under which the API serves them."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["evidence_url", "file_sha256"]


def file_sha256(path: Path | str, chunk_bytes: int = 1 << 20) -> str | None:
    """Hex SHA-256 of a file's content, or None when the file does not exist (yet)."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def evidence_url(base_url: str, case_id: int, evidence_id: int) -> str:
    """Public URL of one evidence image: ``{base_url}/cases/{case_id}/evidence/{evidence_id}``.

    Case systems fetch the images themselves, so the URL must be reachable from them; `base_url` is the
    service's public address (no trailing slash needed).
    """
    return f"{base_url.rstrip('/')}/cases/{case_id}/evidence/{evidence_id}"
