"""Build small, valid PDFs in tests without any PDF library.

``make_pdf(path, n_pages)`` writes a PDF whose pages are visibly different: page ``i``
(1-based) has a large rectangle filled with ``page_color(i)`` over its centre, a heading
"Page i" and, optionally, one line of caller-supplied text.  ``password=`` encrypts the
file with the PDF standard security handler (revision 2, RC4 40-bit), implemented here in
pure Python so that no extra dependency is needed to test encrypted input.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from pathlib import Path

_PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 20, 20),
    (20, 160, 40),
    (30, 60, 220),
    (230, 200, 10),
    (150, 30, 170),
    (10, 180, 190),
    (240, 120, 0),
    (90, 90, 90),
)

# Padding string of the standard security handler (ISO 32000-1, 7.6.3.3, Algorithm 2).
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_PERMISSIONS = -4
_FILE_ID = hashlib.md5(b"sauerkraut-rag test pdf", usedforsecurity=False).digest()


def page_color(page_number: int) -> tuple[int, int, int]:
    """RGB colour of the big rectangle on 1-based ``page_number``."""
    return _PALETTE[(page_number - 1) % len(_PALETTE)]


def make_pdf(
    path: str | os.PathLike[str],
    n_pages: int = 3,
    *,
    size: tuple[float, float] = (612.0, 792.0),
    texts: Sequence[str] | None = None,
    rotate: int = 0,
    password: str | None = None,
) -> Path:
    """Write a PDF with ``n_pages`` pages of ``size`` points (width, height) and return its path.

    ``texts[i]`` (optional) is printed on page ``i + 1``; ``rotate`` sets ``/Rotate`` on every
    page; ``password`` encrypts the file so that it only opens with that user password.
    """
    out = Path(path)
    out.write_bytes(pdf_bytes(n_pages, size=size, texts=texts, rotate=rotate, password=password))
    return out


def pdf_bytes(
    n_pages: int = 3,
    *,
    size: tuple[float, float] = (612.0, 792.0),
    texts: Sequence[str] | None = None,
    rotate: int = 0,
    password: str | None = None,
) -> bytes:
    """The bytes :func:`make_pdf` would write."""
    if texts is not None and len(texts) != n_pages:
        raise ValueError(f"texts has {len(texts)} entries for {n_pages} pages")
    width, height = size
    n_fixed = 3  # catalog, page tree, font
    page_ids = [n_fixed + 1 + 2 * i for i in range(n_pages)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            f"<< /Type /Pages /Count {n_pages} /Kids ["
            + " ".join(f"{pid} 0 R" for pid in page_ids)
            + "] >>"
        ).encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    streams: dict[int, bytes] = {}
    for i, pid in enumerate(page_ids):
        objects[pid] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
            f"/Rotate {rotate} /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {pid + 1} 0 R >>"
        ).encode()
        text = texts[i] if texts is not None else None
        streams[pid + 1] = _page_content(i + 1, width, height, text)

    key = _file_key(password) if password is not None else None
    next_id = n_fixed + 2 * n_pages + 1
    encrypt_id = next_id if password is not None else None
    if password is not None:
        objects[next_id] = _encrypt_dict(password)
    return _serialise(objects, streams, key=key, encrypt_id=encrypt_id)


def zero_page_pdf_bytes() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    return pdf_bytes(0)


def corrupt_pdf_bytes(seed: int = 0, n_bytes: int = 4096) -> bytes:
    """A PDF header followed by random bytes: no objects, no cross-reference table."""
    rng = random.Random(seed)
    return b"%PDF-1.7\n" + bytes(rng.randrange(256) for _ in range(n_bytes))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_content(page_number: int, width: float, height: float, text: str | None) -> bytes:
    r, g, b = (c / 255 for c in page_color(page_number))
    lines = [
        f"{r:.4f} {g:.4f} {b:.4f} rg",
        f"{width * 0.1:g} {height * 0.3:g} {width * 0.8:g} {height * 0.4:g} re f",
        "0 0 0 rg",
        f"BT /F1 36 Tf {width * 0.1:g} {height * 0.85:g} Td (Page {page_number}) Tj ET",
    ]
    if text:
        lines.append(f"BT /F1 14 Tf {width * 0.1:g} {height * 0.78:g} Td ({_escape(text)}) Tj ET")
    return ("\n".join(lines) + "\n").encode("latin-1", errors="replace")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    raw = password.encode("latin-1")[:32]
    return raw + _PAD[: 32 - len(raw)]


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _owner_value(password: str) -> bytes:
    owner_key = _md5(_padded(password + "-owner"))[:5]
    return _rc4(owner_key, _padded(password))


def _file_key(password: str) -> bytes:
    perms = _PERMISSIONS.to_bytes(4, "little", signed=True)
    return _md5(_padded(password) + _owner_value(password) + perms + _FILE_ID)[:5]


def _encrypt_dict(password: str) -> bytes:
    owner = _owner_value(password).hex()
    user = _rc4(_file_key(password), _PAD).hex()
    return (
        f"<< /Filter /Standard /V 1 /R 2 /Length 40 /O <{owner}> /U <{user}> /P {_PERMISSIONS} >>"
    ).encode()


def _serialise(
    objects: dict[int, bytes],
    streams: dict[int, bytes],
    *,
    key: bytes | None,
    encrypt_id: int | None,
) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    ids = sorted({*objects, *streams})
    offsets: dict[int, int] = {}
    for oid in ids:
        offsets[oid] = len(out)
        if oid in streams:
            data = streams[oid]
            if key is not None:
                obj_key = _md5(key + oid.to_bytes(3, "little") + b"\x00\x00")[:10]
                data = _rc4(obj_key, data)
            body = b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
        else:
            body = objects[oid]
        out += b"%d 0 obj\n" % oid + body + b"\nendobj\n"
    xref_at = len(out)
    size = max(ids) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for oid in range(1, size):
        out += b"%010d 00000 n \n" % offsets[oid]
    trailer = f"<< /Size {size} /Root 1 0 R /ID [<{_FILE_ID.hex()}> <{_FILE_ID.hex()}>]"
    if encrypt_id is not None:
        trailer += f" /Encrypt {encrypt_id} 0 R"
    out += b"trailer\n" + trailer.encode() + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)
