"""Benchmark datasets: the same seed gives the same bytes, and a damaged dataset is rebuilt."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from benchmarks.datasets import (
    DatasetSpec,
    ListingDigest,
    ensure_dataset,
    generate_dataset,
    relative_path,
)

SPEC = DatasetSpec("t", 30, 300 * 1024, min_size=1, files_per_dir=4, nested=True)


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = generate_dataset(SPEC, tmp_path / "a", seed=7)
    again = generate_dataset(SPEC, tmp_path / "b", seed=7)
    other = generate_dataset(SPEC, tmp_path / "c", seed=8)
    assert _tree_digest(first.source_dir) == _tree_digest(again.source_dir)
    assert first.listing_digest == again.listing_digest
    assert _tree_digest(first.source_dir) != _tree_digest(other.source_dir)
    assert first.files == 30
    assert first.bytes == sum(p.stat().st_size for p in first.source_dir.rglob("*") if p.is_file())


def test_stamp_digest_equals_a_listing_of_the_files(tmp_path: Path) -> None:
    dataset = generate_dataset(SPEC, tmp_path, seed=1)
    listing = ListingDigest(with_md5=True)
    files = sorted(p for p in dataset.source_dir.rglob("*") if p.is_file())
    for path in sorted(files, key=lambda p: p.relative_to(dataset.source_dir).as_posix()):
        data = path.read_bytes()
        listing.add(path.relative_to(dataset.source_dir).as_posix(), len(data),
                    f'"{hashlib.md5(data).hexdigest()}"')  # ETags come quoted
    assert listing.hexdigest() == dataset.listing_digest
    assert dataset.md5_checked


def test_reused_while_intact_rebuilt_when_a_file_is_damaged(tmp_path: Path) -> None:
    dataset = ensure_dataset(SPEC, tmp_path, seed=3)
    victim = dataset.source_dir / relative_path(SPEC, 5)
    marker = victim.stat().st_mtime_ns
    assert ensure_dataset(SPEC, tmp_path, seed=3).listing_digest == dataset.listing_digest
    assert victim.stat().st_mtime_ns == marker  # reused, not rewritten
    original = victim.read_bytes()
    victim.write_bytes(original[:-1])
    rebuilt = ensure_dataset(SPEC, tmp_path, seed=3)
    assert victim.read_bytes() == original
    assert rebuilt.listing_digest == dataset.listing_digest


def test_manifest_dataset_lines_keys_and_command_file(tmp_path: Path) -> None:
    spec = DatasetSpec("m", 7, 100, files_per_dir=3, manifest_lines=25)
    dataset = generate_dataset(spec, tmp_path, seed=2)
    assert dataset.manifest is not None and dataset.s5cmd_commands is not None
    with open(dataset.manifest, newline="") as lines:
        rows = list(csv.DictReader(lines))
    assert len(rows) == 25 == dataset.files
    assert len({row["key"] for row in rows}) == 25
    assert all(Path(row["path"]).is_file() for row in rows)
    assert [row["key"] for row in rows] == sorted(row["key"] for row in rows)
    commands = dataset.s5cmd_commands.read_text().splitlines()
    assert commands[0] == f"cp {rows[0]['path']} s3://bench/{rows[0]['key']}"
    assert dataset.bytes == 25 * 100
