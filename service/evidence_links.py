"""Signed, expiring evidence links a city can open without an API key.

A case system (Open311 ``media_url``, a webhook receiver) fetches evidence images itself and holds no
streetwatch key, so each link carries its own permission:

    {public_base_url}/evidence/{case_id}/{file}?exp=<unix seconds>&sig=<hex>

where ``sig`` is the hex HMAC-SHA256, under a secret of this service, of ``"<case_id>/<file>/<exp>"`` (a file
name has no ``/``, so the three parts cannot be shifted into one another). ``GET /evidence/...`` answers 403
for a bad or expired signature and 404 for an evidence file the case does not have. Links are made when a
delivery is sent (the outbox row keeps file names only), so a retried delivery carries fresh links; a link
stored by the city stops working `ttl_s` after it was sent.

A link serves the blurred copy of the image (people, faces and plates; `service.privacy`), never the original.
The payload's ``sha256`` stays that of the original, which the service keeps as the evidence; the copy matches
it byte for byte only when nothing had to be blurred.

The secret comes from the settings or, when they give none, from a file made on first start beside the
evidence folder, readable by its owner only, so links survive restarts.

Example:
    >>> links = EvidenceLinks(secret=b"k" * 32, base_url="https://sw.example", ttl_s=600, clock=lambda: 1000.0)
    >>> url = links.url(7, "cam1-v3.jpg")
    >>> url
    'https://sw.example/evidence/7/cam1-v3.jpg?exp=1600&sig=...'  # doctest: +SKIP
    >>> links.verify(7, "cam1-v3.jpg", 1600, url.rsplit("sig=", 1)[1])
    True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Mapping
from urllib.parse import quote

__all__ = ["EvidenceLinks", "evidence_file_name", "load_or_create_secret", "served_evidence_path", "with_evidence_urls"]

SECRET_FILE_NAME = "evidence-links.key"


def evidence_file_name(stored: str) -> str:
    """The file name of a stored evidence path (what payloads and links carry instead of server paths)."""
    # PurePath splits on "/" (and on "\\" only under Windows); evidence paths are written by this service.
    return PurePath(str(stored)).name


@dataclass(frozen=True)
class EvidenceLinks:
    """Makes and checks signed evidence links.

    Attributes:
        secret: HMAC key (at least 16 bytes).
        base_url: The service's public address, as the case system reaches it (no trailing ``/`` needed).
        ttl_s: How long a link stays valid after it is made.
        clock: Unix time in seconds.
    """

    secret: bytes
    base_url: str
    ttl_s: float
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("EvidenceLinks: secret must be at least 16 bytes")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"EvidenceLinks: base_url {self.base_url!r} must be an absolute http(s) URL")
        if not self.ttl_s > 0:
            raise ValueError(f"EvidenceLinks: ttl_s must be positive, got {self.ttl_s}")

    def signature(self, case_id: int, file: str, exp: int) -> str:
        """Hex HMAC-SHA256 of ``<case_id>/<file>/<exp>``."""
        return hmac.new(self.secret, f"{case_id}/{file}/{exp}".encode("utf-8"), hashlib.sha256).hexdigest()

    def url(self, case_id: int, file: str) -> str:
        """A link to evidence `file` of case `case_id`, valid for `ttl_s` from now."""
        if "/" in file or not file:
            raise ValueError(f"evidence file name {file!r}: must be a plain file name")
        exp = int(self.clock() + self.ttl_s)
        return (f"{self.base_url.rstrip('/')}/evidence/{case_id}/{quote(file, safe='')}"
                f"?exp={exp}&sig={self.signature(case_id, file, exp)}")

    def verify(self, case_id: int, file: str, exp: int, sig: str) -> bool:
        """Whether `sig` is this service's signature for the link and `exp` has not passed (constant time)."""
        if exp < self.clock():
            return False
        return hmac.compare_digest(self.signature(case_id, file, exp), sig.lower())


def with_evidence_urls(payload: Mapping[str, Any], links: EvidenceLinks | None) -> dict[str, Any]:
    """The payload with a fresh signed ``url`` on each evidence item (none without `links`).

    Items carry ``file`` (a file name); rows queued before file names replaced paths carry the stored path in
    ``url``: its file name is used, and a server path never leaves in the payload.
    """
    out = dict(payload)
    items = []
    for item in payload.get("evidence") or []:
        item = dict(item)
        old = str(item.pop("url", "") or "")
        file = item.get("file") or (evidence_file_name(old) if old and not old.startswith(("http:", "https:"))
                                    else "")
        if file:
            item["file"] = file
            if links is not None:
                item["url"] = links.url(int(payload["case_id"]), file)
        items.append(item)
    if "evidence" in payload:
        out["evidence"] = items
    return out


def load_or_create_secret(path: Path) -> bytes:
    """The link secret kept in `path`, made (32 random bytes, hex, owner-only) when the file does not exist.

    Raises:
        ValueError: The file exists but holds no usable secret.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting together cannot each write a different secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32) + "\n")
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the evidence link secret must be at least 32 characters; delete the file to "
                         "make a new one")
    return text.encode("ascii")


def served_evidence_path(stored: str, evidence_dir: Path, other_roots: tuple[Path, ...] = ()) -> Path | None:
    """The file an evidence row names, if it may be served: under `evidence_dir` or one of `other_roots` (a
    drone flight's evidence stays in the flight's output folder), and existing. None otherwise.

    A relative stored path is taken under `evidence_dir`, or under the working directory when only that file
    exists (rows written before evidence paths were made absolute are relative to the service's working
    directory, e.g. "var/evidence/cam/day/x.jpg" with evidence_dir "var/evidence").
    """
    root = Path(evidence_dir).resolve()
    given = Path(stored)
    path = (given if given.is_absolute() else root / given).resolve()
    if not given.is_absolute() and not path.is_file() and (Path.cwd() / given).resolve().is_file():
        path = (Path.cwd() / given).resolve()
    # Never serve a file outside those folders, whatever the database says.
    if not any(path.is_relative_to(Path(r).resolve()) for r in (root, *other_roots)):
        return None
    return path if path.is_file() else None
