"""The one MIME guess: an object's Content-Type from its name, when nobody gave one.

Single PUTs and multipart uploads use the same guess, so a file's type never depends on its
size. The guess looks at the name's last suffix only (``a.tar.gz`` is ``.gz``), lower-cased:

1. the table below, for types the standard library lacks or lacks on some Python versions
   (yaml, parquet, avro, jsonl/ndjson, and webp, avif, wasm, md before Python 3.11/3.13);
2. else :func:`mimetypes.guess_type` with ``strict=False`` (the common non-IANA types too);
3. else ``application/octet-stream``.

Guesses are cached by suffix: a job guesses once per suffix, not once per object.
"""

from __future__ import annotations

import functools
import mimetypes

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Suffix -> type, checked before the standard library's table.
EXTRA_TYPES: dict[str, str] = {
    ".yaml": "application/yaml",  # RFC 9512
    ".yml": "application/yaml",
    ".parquet": "application/vnd.apache.parquet",
    ".avro": "application/avro",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".md": "text/markdown",
}


def guess_content_type(name: str) -> str:
    """The Content-Type for an object or file named ``name`` (a key or a path)."""
    slash = name.rfind("/")
    dot = name.rfind(".")
    return _for_suffix(name[dot:].lower() if dot > slash + 1 else "")


@functools.lru_cache(maxsize=512)
def _for_suffix(suffix: str) -> str:
    if not suffix:
        return DEFAULT_CONTENT_TYPE
    extra = EXTRA_TYPES.get(suffix)
    if extra is not None:
        return extra
    return mimetypes.guess_type("x" + suffix, strict=False)[0] or DEFAULT_CONTENT_TYPE
