"""The routing table of `bulkput serve`: which operation a request is, and who answers it.

The services name an operation by method, target (the service, a bucket, an object) and
query sub-resource, not by path alone, so the table is ours rather than aiohttp's router.
The first row that matches wins; a row's ``needs`` are query names that must be present
(``name=value``: with that value)::

    method  target   needs                 operation
    GET     service                        ListBuckets
    PUT     bucket                         CreateBucket
    HEAD    bucket                         HeadBucket
    DELETE  bucket                         DeleteBucket
    GET     bucket   uploads               ListMultipartUploads
    GET     bucket   location              GetBucketLocation
    GET     bucket   list-type=2           ListObjectsV2
    GET     bucket                         ListObjects
    POST    bucket   delete                DeleteObjects
    PUT     object   partNumber, uploadId  UploadPart
    PUT     object                         PutObject
    GET     object   uploadId              ListParts
    GET     object                         GetObject
    HEAD    object                         HeadObject
    DELETE  object   uploadId              AbortMultipartUpload
    DELETE  object                         DeleteObject
    POST    object   uploads               InitiateMultipartUpload
    POST    object   uploadId              CompleteMultipartUpload

Before the table: a request to the service itself other than GET is ``MethodNotAllowed``; a
bucket or object request naming a sub-resource the store does not implement (``?acl``,
``?tagging``, ...; see :data:`UNSUPPORTED_SUBRESOURCES`), or a copy (``x-*-copy-source``), is
``NotImplemented``, except ``GET bucket?uploads``. No matching row is ``NotImplemented`` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from bulkput.server.call import Route, Target
from bulkput.server.handlers import bucket, multipart
from bulkput.server.handlers import object as objects
from bulkput.server.services import ServeError

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState

# Query names that select a sub-resource we do not implement (ACLs, CORS, ...): answered 501.
UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "acl", "cors", "lifecycle", "policy", "tagging", "website", "logging", "versioning",
        "versions", "encryption", "replication", "append", "symlink", "restore", "select",
        "notification", "referer", "inventory", "accelerate", "requestPayment", "object-lock",
        "retention", "legal-hold", "torrent", "analytics", "metrics", "ownershipControls",
        "publicAccessBlock", "intelligent-tiering", "storageClass", "trash", "mirroring",
        "copyrightProtection", "userQuota", "fetch", "worm", "qos", "stat", "objectMeta",
    }
)  # fmt: skip
COPY_SOURCE_HEADERS = frozenset({"x-amz-copy-source", "x-oss-copy-source", "x-bce-copy-source"})

_REFUSALS = {
    "MethodNotAllowed": "The specified method is not allowed.",
    "NotImplemented": "This operation is not implemented by bulkput serve.",
    "Unknown": "The request could not be read.",
}


def refusal(operation: str) -> ServeError:
    """The error a pseudo-operation (no handler of its own) is answered with."""
    return ServeError(operation, _REFUSALS[operation])


async def _refuse(server: ServerState, call: Call) -> web.StreamResponse:
    raise refusal(call.operation)


SVC, BKT, OBJ = Target.SERVICE, Target.BUCKET, Target.OBJECT
ROUTES: tuple[Route, ...] = (
    Route("GET", SVC, (), "ListBuckets", bucket.list_buckets),
    Route("PUT", BKT, (), "CreateBucket", bucket.create_bucket),
    Route("HEAD", BKT, (), "HeadBucket", bucket.head_bucket),
    Route("DELETE", BKT, (), "DeleteBucket", bucket.delete_bucket),
    Route("GET", BKT, ("uploads",), "ListMultipartUploads", multipart.list_uploads),
    Route("GET", BKT, ("location",), "GetBucketLocation", bucket.get_location),
    Route("GET", BKT, ("list-type=2",), "ListObjectsV2", bucket.list_objects_v2),
    Route("GET", BKT, (), "ListObjects", bucket.list_objects),
    Route("POST", BKT, ("delete",), "DeleteObjects", objects.delete_objects),
    Route("PUT", OBJ, ("partNumber", "uploadId"), "UploadPart", multipart.upload_part),
    Route("PUT", OBJ, (), "PutObject", objects.put_object),
    Route("GET", OBJ, ("uploadId",), "ListParts", multipart.list_parts),
    Route("GET", OBJ, (), "GetObject", objects.get_object),
    Route("HEAD", OBJ, (), "HeadObject", objects.head_object),
    Route("DELETE", OBJ, ("uploadId",), "AbortMultipartUpload", multipart.abort),
    Route("DELETE", OBJ, (), "DeleteObject", objects.delete_object),
    Route("POST", OBJ, ("uploads",), "InitiateMultipartUpload", multipart.initiate),
    Route("POST", OBJ, ("uploadId",), "CompleteMultipartUpload", multipart.complete),
)
_ROWS_BY_REQUEST: dict[tuple[str, Target], tuple[Route, ...]] = {
    (method, target): tuple(r for r in ROUTES if (r.method, r.target) == (method, target))
    for method, target in {(r.method, r.target) for r in ROUTES}
}
METHOD_NOT_ALLOWED = Route("*", SVC, (), "MethodNotAllowed", _refuse)
NOT_IMPLEMENTED = Route("*", OBJ, (), "NotImplemented", _refuse)
UNKNOWN = Route("*", SVC, (), "Unknown", _refuse)  # the target itself could not be read


def route_for(
    method: str, target: Target, params: Mapping[str, str], headers: Mapping[str, str]
) -> Route:
    """The row of :data:`ROUTES` for this request, or a pseudo-route that refuses it."""
    if target is SVC:
        return ROUTES[0] if method == "GET" else METHOD_NOT_ALLOWED
    unsupported = not UNSUPPORTED_SUBRESOURCES.isdisjoint(params)
    if unsupported and not (target is BKT and method == "GET" and "uploads" in params):
        return NOT_IMPLEMENTED
    if target is OBJ and method == "PUT" and not COPY_SOURCE_HEADERS.isdisjoint(headers):
        return NOT_IMPLEMENTED  # CopyObject and UploadPartCopy
    for route in _ROWS_BY_REQUEST.get((method, target), ()):
        if route.matches(params):
            return route
    return NOT_IMPLEMENTED
