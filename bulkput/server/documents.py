"""The request documents the store reads: a DeleteObjects key list and a
CompleteMultipartUpload part list, in XML (S3, OSS) or JSON (BOS). Pure: bytes in, values out,
ServeError ``MalformedXML`` (BOS: MalformedJSON) for anything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

from bulkput.server.services import ServeError

MAX_DELETE_KEYS = 1000


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (child for child in element if _strip_ns(child.tag) == name)


def _child_text(element: ElementTree.Element, name: str) -> str | None:
    for child in _children(element, name):
        return child.text or ""
    return None


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    keys: list[str]
    quiet: bool  # answer only the failures


def parse_delete_request(raw: bytes, *, json_document: bool) -> DeleteRequest:
    """The keys of a DeleteObjects request: between 1 and 1,000."""
    quiet = False
    keys: list[str] = []
    if json_document:
        try:
            document = json.loads(raw or b"{}")
            keys = [str(item["key"]) for item in document["objects"]]
        except (ValueError, KeyError, TypeError):
            raise ServeError("MalformedXML", "The JSON you provided was not well-formed.") from None
    else:
        try:
            root = ElementTree.fromstring(raw)
        except ElementTree.ParseError:
            raise ServeError("MalformedXML", "The XML you provided was not well-formed.") from None
        quiet = (_child_text(root, "Quiet") or "").strip().lower() == "true"
        for item in _children(root, "Object"):
            key = _child_text(item, "Key")
            if key is None:
                raise ServeError("MalformedXML", "Each Object needs a Key.")
            keys.append(key)
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise ServeError("MalformedXML", "Between 1 and 1000 keys can be deleted at once.")
    return DeleteRequest(keys, quiet)


def parse_part_list(raw: bytes, *, json_document: bool) -> list[tuple[int, str]]:
    """(part number, ETag) pairs of a CompleteMultipartUpload request, as sent."""
    requested: list[tuple[int, str]] = []
    try:
        if json_document:
            document = json.loads(raw or b"{}")
            for item in document["parts"]:
                requested.append((int(item["partNumber"]), str(item["eTag"])))
        else:
            root = ElementTree.fromstring(raw)
            for item in _children(root, "Part"):
                number = int(_child_text(item, "PartNumber") or "")
                requested.append((number, _child_text(item, "ETag") or ""))
    except (ValueError, KeyError, TypeError, ElementTree.ParseError):
        raise ServeError(
            "MalformedXML", "The request body you provided was not well-formed."
        ) from None
    if not requested:
        raise ServeError("MalformedXML", "You must specify at least one part.")
    return requested
