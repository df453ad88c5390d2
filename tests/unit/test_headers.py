"""The one header builder (bulkput.job.headers)."""

from __future__ import annotations

from bulkput.items import UploadItem
from bulkput.job.headers import HeaderBuilder
from bulkput.remote.store import ObjectHeaders


def test_item_fields_win_metadata_merges_and_the_type_is_guessed() -> None:
    builder = HeaderBuilder(ObjectHeaders(cache_control="max-age=60", acl="private", metadata={"job": "7"}))
    plain = builder.for_item(UploadItem("/x/a.json", "p/a.json"))
    own = builder.for_item(
        UploadItem("/x/b.json", "p/b.json", content_type="text/x-mine", acl="public-read", metadata={"k": "v"})
    )
    assert (plain.content_type, plain.cache_control, plain.acl, plain.metadata) == (
        "application/json", "max-age=60", "private", {"job": "7"}
    )
    assert (own.content_type, own.cache_control, own.acl, own.metadata) == (
        "text/x-mine", "max-age=60", "public-read", {"job": "7", "k": "v"}
    )


def test_a_default_content_type_replaces_the_guess() -> None:
    builder = HeaderBuilder(ObjectHeaders(content_type="application/x-custom"))
    assert builder.for_item(UploadItem("/x/a.json", "a.json")).content_type == "application/x-custom"
    given = UploadItem("/x/a.json", "a.json", content_type="text/plain")
    assert builder.for_item(given).content_type == "text/plain"


def test_items_without_own_fields_share_one_headers_object_per_type() -> None:
    builder = HeaderBuilder()
    first = builder.for_item(UploadItem("/x/1.txt", "1.txt"))
    assert builder.for_item(UploadItem("/x/2.txt", "2.txt")) is first
    assert builder.for_item(UploadItem("/x/3.md", "3.md")).content_type == "text/markdown"
