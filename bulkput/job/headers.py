"""The one header builder: an upload item's object headers, for single PUTs and multipart alike.

An item's own fields win over the job's defaults (``--cache-control``, ``--acl``, ``--meta``
...); user metadata is merged (the item's names win). The Content-Type is the item's, else the
job's default, else :func:`bulkput.local.content_type.guess_content_type` of the key.

Most items carry no fields of their own: their headers depend only on the content type, so
they are built once per content type and shared (``ObjectHeaders`` is frozen).
"""

from __future__ import annotations

from bulkput.items import UploadItem
from bulkput.local.content_type import guess_content_type
from bulkput.remote.store import ObjectHeaders


class HeaderBuilder:
    """Builds the headers of each item of one job (``defaults``: the job's headers)."""

    def __init__(self, defaults: ObjectHeaders | None = None) -> None:
        self.defaults = defaults or ObjectHeaders()
        self._shared: dict[str, ObjectHeaders] = {}  # content type -> headers

    def for_item(self, item: UploadItem) -> ObjectHeaders:
        content_type = item.content_type or self.defaults.content_type or guess_content_type(
            item.key
        )
        if (
            item.cache_control is None
            and item.content_disposition is None
            and item.content_encoding is None
            and item.expires is None
            and item.acl is None
            and item.storage_class is None
            and not item.metadata
        ):
            shared = self._shared.get(content_type)
            if shared is None:
                shared = self._shared[content_type] = self._merge(item, content_type)
            return shared
        return self._merge(item, content_type)

    def _merge(self, item: UploadItem, content_type: str) -> ObjectHeaders:
        d = self.defaults
        metadata = {**d.metadata, **item.metadata} if item.metadata else d.metadata
        return ObjectHeaders(
            content_type=content_type,
            cache_control=item.cache_control or d.cache_control,
            content_disposition=item.content_disposition or d.content_disposition,
            content_encoding=item.content_encoding or d.content_encoding,
            expires=item.expires or d.expires,
            acl=item.acl or d.acl,
            storage_class=item.storage_class or d.storage_class,
            server_side_encryption=d.server_side_encryption,
            sse_kms_key_id=d.sse_kms_key_id,
            metadata=metadata,
        )
