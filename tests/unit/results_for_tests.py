"""Results and a clock for the tests of the summary, the report and the progress display."""

from __future__ import annotations

import json
from pathlib import Path

from bulkput.items import ObjectResult, Status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stored(key: str, size: int, attempts: int = 1) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.STORED, size=size,
                        md5="0" * 32, etag="0" * 32, attempts=attempts)


def skipped(key: str, reason: str) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.SKIPPED, reason=reason)


def failed(key: str, code: str = "NoSuchFile", attempts: int = 1) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.FAILED, attempts=attempts,
                        error_code=code, message=f"{key}: {code}: it went wrong",
                        request_id="req-1")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
