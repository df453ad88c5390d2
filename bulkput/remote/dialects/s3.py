"""S3: XML bodies (ListObjectsV2, DeleteObjects, multipart), ``x-amz-*`` headers, SigV4.

The XML helpers here serve OSS too, which speaks the same XML family with its own header
names (see :mod:`bulkput.remote.dialects.oss`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit

from bulkput.errors import error_from_response
from bulkput.remote.dialects.base import (
    LOCATION_STATUSES,
    BucketLocation,
    Choice,
    Dialect,
    Page,
    Query,
    content_md5,
    strip_etag,
)
from bulkput.remote.store import DeleteFailure, ObjectInfo, PartInfo, PutResult, UploadInfo
from bulkput.suggest import did_you_mean

if TYPE_CHECKING:  # the XML modules are imported when an answer has XML to read (see parse_xml)
    import xml.etree.ElementTree as ElementTree

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
log = logging.getLogger("bulkput.remote")


def parse_xml(body: bytes) -> ElementTree.Element:
    """The root element with namespaces removed from every tag (S3 uses one, OSS none)."""
    # imported here, not with the module: a job whose answers carry no XML (small PUTs
    # answered 200) does not pay for the XML modules (~5 ms of CPU per process)
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.fromstring(body)
    for element in root.iter():
        if element.tag[:1] == "{":
            element.tag = element.tag.rpartition("}")[2]
    return root


# A listing page is mostly <Contents> blocks: reading them with one regular expression is
# about ten times faster than building an element tree, and the re-sync of a large tree spends
# most of its time on its listing. Only the usual shape is read this way (Key, LastModified and
# ETag first, Size after simple elements, the blocks back to back); the rest of the page still
# goes through the XML parser, so a malformed answer is still refused, and a page of any other
# shape (CDATA, a DOCTYPE, raw CRs, prefixed or attributed tags, ...) is parsed whole.
_CONTENTS_ENTRY = re.compile(
    r"<Contents>\s*<Key>([^<]*)</Key>\s*<LastModified>([^<]*)</LastModified>\s*"
    r"<ETag>([^<]*)</ETag>\s*(?:<(\w+)>[^<]*</\4>\s*)*?<Size>([^<]*)</Size>.*?</Contents>\s*",
    re.S,
)


def _xml_text(value: str) -> str:
    if "&" not in value:
        return value
    import html

    return html.unescape(value)


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as XML entities (what ``xml.sax.saxutils.escape`` does, without
    importing the SAX package for it)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def split_contents(body: bytes) -> tuple[list[tuple[str, str, str, str]], bytes] | None:
    """``(key, last_modified, etag, size)`` of each ``<Contents>`` block and the body without
    them, or None when the page is not of the usual shape (the caller then parses it whole)."""
    try:
        page = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "<!" in page or "\r" in page:  # CDATA, DOCTYPE, comments; line ends XML normalises
        return None
    first = page.find("<Contents>")
    if first < 0:
        return None  # nothing to gain (or contents written another way)
    rows = []
    position = first
    for match in _CONTENTS_ENTRY.finditer(page, first):
        if match.start() != position:
            return None  # a block the expression could not read
        key, modified, etag, size = match.group(1, 2, 3, 5)
        rows.append((_xml_text(key), _xml_text(modified), _xml_text(etag), _xml_text(size)))
        position = match.end()
    if page.count("<Contents") != len(rows):
        return None
    return rows, (page[:first] + page[position:]).encode("utf-8")


# What URL encoding never leaves in a key: a space, a control character, anything beyond ASCII,
# or a "%" that does not start an escape.
_NOT_URL_ENCODED = re.compile(r"[^\x21-\x7e]|%(?![0-9A-Fa-f]{2})")


def keys_are_url_encoded(encoding_type: str | None, keys: Iterable[str]) -> bool:
    """Whether the keys of one answer (a listing page, a delete result) are to be URL-decoded.

    ============================  =========================================  ========
    ``<EncodingType>`` answered   a key holds what URL encoding never leaves  decode
    ============================  =========================================  ========
    absent, empty or not ``url``  (not looked at)                            no
    ``url``                       no                                         yes
    ``url``                       yes (space, control, non-ASCII, bare ``%``)  no
    ============================  =========================================  ========

    The last row is a server that echoes the request's ``encoding-type=url`` but sends the
    keys as they are (SeaweedFS's ListMultipartUploads): decoding them would turn ``a b+c.bin``
    into ``a b c.bin``, a key that does not exist.
    """
    if (encoding_type or "").strip().lower() != "url":
        return False
    # one search over the page ("/" between keys cannot complete a "%" escape)
    return _NOT_URL_ENCODED.search("/".join(keys)) is None


def text(parent: ElementTree.Element, tag: str) -> str | None:
    node = parent.find(tag)
    return None if node is None else (node.text or "")


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class XmlDialect(Dialect):
    """Shared by S3 and OSS: XML error bodies and list/multipart formats."""

    # how the service percent-encodes keys when asked for ``encoding-type=url``
    _url_decode: Callable[[str], str] = staticmethod(unquote_plus)
    xml_content_type = "application/xml"

    def _decoder(self, root: ElementTree.Element, keys: Iterable[str]) -> Callable[[str], str]:
        """How to read the raw ``keys`` of the answer ``root`` (see :func:`keys_are_url_encoded`)."""
        if keys_are_url_encoded(text(root, "EncodingType"), keys):
            return self._url_decode
        return str

    # --- errors -------------------------------------------------------------------------------

    def parse_error_body(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> tuple[str | None, str | None, str | None]:
        if not body.strip():
            return None, None, None
        root = parse_xml(body)
        if root.tag != "Error":
            raise ValueError("not an Error document")
        return text(root, "Code") or None, text(root, "Message") or None, text(root, "RequestId")

    def bucket_location(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> BucketLocation | None:
        """Also the ``<Region>`` (S3's AuthorizationHeaderMalformed) and ``<Endpoint>`` (S3's
        PermanentRedirect, OSS's AccessDenied) of an XML error body."""
        if status not in LOCATION_STATUSES:
            return None
        region = host = None
        if body.strip():
            try:
                root = parse_xml(body)
            except (ValueError, SyntaxError):
                root = None
            if root is not None and root.tag == "Error":
                region = (text(root, "Region") or "").strip() or None
                host = (text(root, "Endpoint") or "").strip().lower() or None
        if host is not None and "://" in host:
            host = urlsplit(host).hostname
        if region is None and host is not None:
            region = self._region_of_host(host)
        if region is None and host is None:
            return super().bucket_location(status, headers, body)
        return BucketLocation(region, host)

    # --- multi-object delete ------------------------------------------------------------------

    def delete_objects_body(self, keys: Sequence[str]) -> tuple[Query, bytes, dict[str, str]]:
        objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>{objects}</Delete>'
        ).encode()
        headers = {"content-type": self.xml_content_type, "content-md5": content_md5(body)}
        return self._delete_query(), body, headers

    def _delete_query(self) -> Query:
        return (("delete", None),)

    def parse_delete_objects(self, body: bytes) -> list[DeleteFailure]:
        if not body.strip():
            return []
        root = parse_xml(body)
        errors = root.findall("Error")
        raw_keys = [text(node, "Key") or "" for node in errors]
        decode = self._decoder(root, raw_keys)
        return [
            DeleteFailure(
                key=decode(raw_key),
                code=text(node, "Code") or "Error",
                message=text(node, "Message") or "",
            )
            for node, raw_key in zip(errors, raw_keys, strict=True)
        ]

    # --- multipart ----------------------------------------------------------------------------

    def parse_initiate(self, body: bytes) -> str:
        upload_id = text(parse_xml(body), "UploadId")
        if not upload_id:
            raise ValueError("initiate-multipart answer has no UploadId")
        return upload_id

    def complete_body(self, parts: Sequence[PartInfo]) -> tuple[bytes, dict[str, str]]:
        items = "".join(
            f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>&quot;{escape(p.etag)}&quot;</ETag></Part>"
            for p in sorted(parts, key=lambda p: p.part_number)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>"
        ).encode()
        return body, {"content-type": self.xml_content_type, "content-md5": content_md5(body)}

    def parse_complete(
        self, headers: Mapping[str, str], body: bytes, *, bucket: str, key: str
    ) -> PutResult:
        root = parse_xml(body) if body.strip() else None
        if root is not None and root.tag == "Error":
            # botocore's rule: a 200 that carries an <Error> is a failed (retryable) request
            code = text(root, "Code") or "InternalError"
            message = text(root, "Message") or "complete-multipart answered 200 with an error"
            raise error_from_response(
                500,
                code,
                f"{message} (in a 200 answer)",
                request_id=self.request_id(headers) or text(root, "RequestId"),
                bucket=bucket,
                key=key,
            )
        etag = text(root, "ETag") if root is not None else None
        crc = headers.get("x-oss-hash-crc64ecma")
        return PutResult(
            etag=strip_etag(etag or headers.get("etag")),
            request_id=self.request_id(headers),
            crc64=int(crc) if crc and crc.isdigit() else None,
        )

    def list_parts_query(self, upload_id: str) -> Query:
        return (("uploadId", upload_id),)

    def parse_list_parts(self, body: bytes) -> Page[PartInfo]:
        root = parse_xml(body)
        page: Page[PartInfo] = Page()
        for node in root.findall("Part"):
            number = _int(text(node, "PartNumber"))
            if number is None:
                continue
            page.items.append(
                PartInfo(number, strip_etag(text(node, "ETag")) or "", _int(text(node, "Size")))
            )
        if truthy(text(root, "IsTruncated")):
            marker = text(root, "NextPartNumberMarker") or (
                str(page.items[-1].part_number) if page.items else None
            )
            if marker:
                page.next_query = {"part-number-marker": marker}
        return page

    def list_uploads_query(self, prefix: str) -> Query:
        return (("uploads", None), ("prefix", prefix), ("encoding-type", "url"))

    def parse_list_uploads(self, body: bytes) -> Page[UploadInfo]:
        root = parse_xml(body)
        uploads = root.findall("Upload")
        raw_keys = [text(node, "Key") or "" for node in uploads]
        key_marker = text(root, "NextKeyMarker")
        decode = self._decoder(root, [*raw_keys, key_marker or ""])
        page: Page[UploadInfo] = Page()
        for node, raw_key in zip(uploads, raw_keys, strict=True):
            page.items.append(
                UploadInfo(
                    key=decode(raw_key),
                    upload_id=text(node, "UploadId") or "",
                    initiated=text(node, "Initiated"),
                )
            )
        if truthy(text(root, "IsTruncated")):
            upload_marker = text(root, "NextUploadIdMarker")
            if key_marker is not None:
                page.next_query = {"key-marker": decode(key_marker)}
                if upload_marker:
                    page.next_query["upload-id-marker"] = upload_marker
            elif page.items:
                last = page.items[-1]
                page.next_query = {"key-marker": last.key, "upload-id-marker": last.upload_id}
        return page

    def _listing(self, body: bytes) -> tuple[ElementTree.Element, list[ObjectInfo]]:
        """The page's root (without its ``<Contents>`` when they were read apart) and objects."""
        split = split_contents(body)
        if split is None:
            root = parse_xml(body)
            return root, self._contents(root)
        rows, rest = split
        root = parse_xml(rest)
        return root, self._objects(root, rows)

    def _contents(self, root: ElementTree.Element) -> list[ObjectInfo]:
        rows = [
            (text(node, "Key") or "", text(node, "LastModified"), text(node, "ETag"),
             text(node, "Size"))
            for node in root.findall("Contents")
        ]  # fmt: skip
        return self._objects(root, rows)

    def _objects(
        self, root: ElementTree.Element, rows: Sequence[tuple[str, str | None, str | None, str | None]]
    ) -> list[ObjectInfo]:
        """``(key, last_modified, etag, size)`` rows of a page as objects (keys decoded)."""
        decode = self._decoder(root, (row[0] for row in rows))
        return [
            ObjectInfo(
                key=decode(key), size=_int(size) or 0, etag=strip_etag(etag), last_modified=modified
            )
            for key, modified, etag, size in rows
        ]


class S3Dialect(XmlDialect):
    name = "s3"
    finds_region_with_head = True
    answers_head_bucket = True
    meta_prefix = "x-amz-meta-"
    acl_header = "x-amz-acl"
    storage_class_header = "x-amz-storage-class"
    sse_header = "x-amz-server-side-encryption"
    request_id_header = "x-amz-request-id"
    signature_name = "SigV4"
    storage_classes = (
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "OUTPOSTS",
        "GLACIER_IR",
        "SNOW",
        "EXPRESS_ONEZONE",
    )
    acls = (
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
    )
    sse_values = ("AES256", "aws:kms", "aws:kms:dsse")
    kms_values = frozenset({"aws:kms", "aws:kms:dsse"})
    kms_key_header = "x-amz-server-side-encryption-aws-kms-key-id"
    request_payer_header = "x-amz-request-payer"
    customer_key_answer_header = "x-amz-server-side-encryption-customer-algorithm"
    max_metadata_bytes = 2 * 1024  # S3: user-defined metadata, names and values, 2 KB

    def signer_name(self, signature_version: str = "v4") -> str:
        return "s3-v4"

    def bucket_location(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> BucketLocation | None:
        """First ``x-amz-bucket-region``, which AWS sends with answers about a bucket in
        another region (a HEAD's has no body) and with HEAD bucket's 200."""
        region = (headers.get("x-amz-bucket-region") or "").strip()
        if region:
            return BucketLocation(region)
        return super().bucket_location(status, headers, body)

    def list_objects_query(self, prefix: str, page_size: int) -> Query:
        return (
            ("list-type", "2"),
            ("prefix", prefix),
            ("max-keys", str(page_size)),
            ("encoding-type", "url"),
        )

    def list_start_after(self, key: str) -> dict[str, str]:
        return {"start-after": key}

    def parse_list_objects(self, body: bytes) -> Page[ObjectInfo]:
        root, items = self._listing(body)
        page = Page(items)
        if truthy(text(root, "IsTruncated")):
            token = text(root, "NextContinuationToken")
            if token:
                page.next_query = {"continuation-token": token}
            elif page.items:
                page.next_query = {"start-after": page.items[-1].key}
        return page

    def create_bucket_body(self, region: str) -> tuple[bytes | None, dict[str, str]]:
        if region in ("", "us-east-1"):
            return None, {}
        body = (
            f'<CreateBucketConfiguration xmlns="{S3_XMLNS}">'
            f"<LocationConstraint>{escape(region)}</LocationConstraint>"
            "</CreateBucketConfiguration>"
        ).encode()
        return body, {"content-type": self.xml_content_type}


class S3CompatibleDialect(S3Dialect):
    """S3 as another store speaks it (Ceph, MinIO, SeaweedFS, Huawei OBS...), for ``s3://``
    with an endpoint that is not AWS's own: such stores have storage classes of their own
    (OBS ``WARM``, Ceph placement targets), so a class AWS does not know is sent as given, with
    one warning per class, and the store decides. One instance per store: the warnings are the
    job's."""

    def __init__(self) -> None:
        super().__init__()
        self._warned_classes: set[str] = set()

    def _check_storage_class(self, key: str, value: str | None) -> None:
        if value is None or value.lower() in self._storage_class_canon:
            return
        if value not in self._warned_classes:
            self._warned_classes.add(value)
            hint = did_you_mean(value, self.storage_classes)
            log.warning(
                "storage class %r is not one of AWS S3's%s; sent as given (the store behind "
                "the endpoint must know it)", value, f" ({hint})" if hint else "",
            )  # fmt: skip

    def unknown_choice(self, what: Choice, value: str) -> str | None:
        if what == "storage class":
            return None  # the store's own classes: sent as given (one warning, above)
        return super().unknown_choice(what, value)
