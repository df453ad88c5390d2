"""Benchmark datasets: generated on demand, deterministic from a seed, cached on disk.

Each dataset lives in ``<cache>/<name>/`` with its files under ``files/`` and a stamp file
(``.stamp.json``) written last. The stamp records the spec, the seed, the generator version,
the file count, the total bytes and a digest of the sorted ``key<TAB>size<TAB>md5`` lines, so a
run can check a listing against the dataset without walking it again. A dataset whose stamp
matches and whose files are all present with the right sizes is not generated again.

Bytes come from ``random.Random(seed)``: small files take ``randbytes`` directly; big files are
cut at random offsets from a 32 MiB random pool (``randbytes`` alone runs at ~160 MB/s here,
too slow for 4 GiB; the pool keeps the bytes incompressible at disk speed).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

GENERATOR_VERSION = 1
DEFAULT_SEED = 20240601
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Files up to this size are sent with one PUT by every contender (aws cli's multipart threshold
# is the lowest at 8 MiB), so their ETag is their MD5 and a listing can be checked by MD5.
SINGLE_PUT_LIMIT = 8 * MIB
_POOL_SIZE = 32 * MIB
_CHUNK = MIB
STAMP_NAME = ".stamp.json"
# Every timed run goes to a fresh, empty bucket of this name (the s5cmd command file names it).
BUCKET = "bench"


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one dataset.

    ``size`` is the exact size of every file, or, with ``min_size``, the upper bound of a size
    drawn uniformly in ``[min_size, size]``. Files go ``files_per_dir`` to a folder, and the
    folders are nested two deep (``d000/s00/``) when ``nested`` is set.
    ``manifest_lines`` turns the dataset into a manifest: ``count`` source files plus a CSV
    manifest (``path,key``) of that many lines cycling over them, each with its own key.
    """

    name: str
    count: int
    size: int
    min_size: int | None = None
    files_per_dir: int = 0  # 0: all files in one folder
    nested: bool = False
    manifest_lines: int = 0
    description: str = ""

    def scaled(self, count: int) -> DatasetSpec:
        """The same dataset with fewer files (``--quick``), cached under its own name."""
        if count >= self.count:
            return self
        lines = min(self.manifest_lines, count) if self.manifest_lines else 0
        return replace(self, name=f"{self.name}-{count}", count=count, manifest_lines=lines)

    @property
    def nominal_bytes(self) -> int:
        mean = self.size if self.min_size is None else (self.size + self.min_size) // 2
        return self.count * mean


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("small", 5_000, 4 * KIB, files_per_dir=25, nested=True,
                    description="5,000 files of 4 KiB in 200 nested folders"),
        DatasetSpec("wan", 2_000, 4 * KIB, files_per_dir=25, nested=True,
                    description="2,000 files of 4 KiB"),
        DatasetSpec("medium", 200, 1 * MIB, files_per_dir=50,
                    description="200 files of 1 MiB in 4 folders"),
        DatasetSpec("large", 4, 256 * MIB, description="4 files of 256 MiB"),
        DatasetSpec("huge", 4, 1 * GIB, description="4 files of 1 GiB"),
        DatasetSpec("tree", 100_000, 4 * KIB, min_size=256, files_per_dir=100, nested=True,
                    description="100,000 files of 256 B to 4 KiB in 1,000 nested folders"),
        DatasetSpec("manifest-5k", 5_000, 4 * KIB, files_per_dir=25, nested=True,
                    manifest_lines=5_000,
                    description="a 5,000-line CSV manifest (path,key) over 5,000 files of 4 KiB"),
        DatasetSpec("manifest-2k", 2_000, 4 * KIB, files_per_dir=25, nested=True,
                    manifest_lines=2_000,
                    description="a 2,000-line CSV manifest (path,key) over 2,000 files of 4 KiB"),
        DatasetSpec("manifest-10", 10, 4 * KIB, manifest_lines=10,
                    description="a 10-line CSV manifest over 10 files of 4 KiB (a fixed cost)"),
        DatasetSpec("manifest-1m", 1_000, 1 * KIB, files_per_dir=100, manifest_lines=1_000_000,
                    description="a 1,000,000-line CSV manifest (path,key) over 1,000 files "
                                "of 1 KiB, each line its own key"),
    )
}


@dataclass(frozen=True)
class Dataset:
    """A generated, verified dataset on disk."""

    spec: DatasetSpec
    root: Path  # the dataset's folder
    seed: int
    files: int  # objects a full upload must produce (manifest lines for a manifest)
    bytes: int  # their total size
    listing_digest: str  # sha256 of the sorted "key\tsize\tmd5" lines (md5 "-" when unchecked)
    md5_checked: bool

    @property
    def source_dir(self) -> Path:
        return self.root / "files"

    @property
    def manifest(self) -> Path | None:
        return self.root / "manifest.csv" if self.spec.manifest_lines else None

    @property
    def s5cmd_commands(self) -> Path | None:
        """The manifest as an ``s5cmd run`` command file (into bucket ``BUCKET``)."""
        return self.root / "s5cmd-commands.txt" if self.spec.manifest_lines else None


def relative_path(spec: DatasetSpec, index: int) -> str:
    """The key (relative path, ``/`` separated) of file ``index``."""
    name = f"f{index:06d}.bin"
    if not spec.files_per_dir:
        return name
    folder = index // spec.files_per_dir
    if spec.nested:
        return f"d{folder // 10:03d}/s{folder % 10:02d}/{name}"
    return f"d{folder:03d}/{name}"


def manifest_key(index: int) -> str:
    return f"m/{index // 1000:04d}/k{index:07d}"


class ListingDigest:
    """Sha256 over ``key\\tsize\\tmd5\\n`` lines fed in sorted key order (constant memory)."""

    def __init__(self, with_md5: bool) -> None:
        self.with_md5 = with_md5
        self._hash = hashlib.sha256()
        self.count = 0
        self.bytes = 0
        self._last_key: str | None = None
        self.out_of_order = False

    def add(self, key: str, size: int, md5_hex: str | None) -> None:
        if self._last_key is not None and key.encode() <= self._last_key.encode():
            self.out_of_order = True
        self._last_key = key
        md5_field = (md5_hex or "?").lower().strip('"') if self.with_md5 else "-"
        self._hash.update(f"{key}\t{size}\t{md5_field}\n".encode())
        self.count += 1
        self.bytes += size

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _file_sizes(spec: DatasetSpec, seed: int) -> list[int]:
    rng = random.Random(f"{seed}:{spec.name}:sizes")
    if spec.min_size is None:
        return [spec.size] * spec.count
    return [rng.randint(spec.min_size, spec.size) for _ in range(spec.count)]


def _write_file(path: Path, size: int, rng: random.Random, pool: bytes | None) -> str | None:
    """Write ``size`` seeded bytes; returns the MD5 hex for files below the single-PUT limit."""
    if pool is None:
        data = rng.randbytes(size)
        path.write_bytes(data)
        return hashlib.md5(data).hexdigest()
    digest = hashlib.md5() if size <= SINGLE_PUT_LIMIT else None
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(_CHUNK, left)
            offset = rng.randrange(0, len(pool) - n)
            chunk = pool[offset:offset + n]
            out.write(chunk)
            if digest is not None:
                digest.update(chunk)
            left -= n
    return digest.hexdigest() if digest is not None else None


def _read_stamp(root: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _stamp_matches(stamp: dict[str, object], spec: DatasetSpec, seed: int) -> bool:
    return (
        stamp.get("version") == GENERATOR_VERSION
        and stamp.get("seed") == seed
        and stamp.get("spec") == asdict(spec)
    )


def _files_present(spec: DatasetSpec, root: Path, seed: int) -> bool:
    """Every file is there with its size (a cheap stat pass; contents are trusted to the stamp)."""
    sizes = _file_sizes(spec, seed)
    source = root / "files"
    try:
        for index, size in enumerate(sizes):
            if (source / relative_path(spec, index)).stat().st_size != size:
                return False
    except OSError:
        return False
    if spec.manifest_lines:
        # the manifest holds absolute paths: it is stale if the cache folder moved
        try:
            with open(root / "manifest.csv", newline="") as manifest:
                first = next(csv.DictReader(manifest))
        except (OSError, StopIteration):
            return False
        return Path(first["path"]).is_file() and (root / "s5cmd-commands.txt").is_file()
    return True


def _dataset_from_stamp(spec: DatasetSpec, root: Path, seed: int,
                        stamp: dict[str, object]) -> Dataset:
    files, total = stamp["files"], stamp["bytes"]
    digest, md5_checked = stamp["listing_digest"], stamp["md5_checked"]
    assert isinstance(files, int) and isinstance(total, int)
    assert isinstance(digest, str) and isinstance(md5_checked, bool)
    return Dataset(spec, root, seed, files, total, digest, md5_checked)


def ensure_dataset(spec: DatasetSpec, cache_dir: Path, seed: int = DEFAULT_SEED) -> Dataset:
    """The dataset on disk, generated now unless a matching stamp and all files are present."""
    root = cache_dir / spec.name
    stamp = _read_stamp(root)
    if stamp is not None and _stamp_matches(stamp, spec, seed) and _files_present(spec, root, seed):
        return _dataset_from_stamp(spec, root, seed, stamp)
    return generate_dataset(spec, cache_dir, seed)


def generate_dataset(spec: DatasetSpec, cache_dir: Path, seed: int = DEFAULT_SEED) -> Dataset:
    """Write the dataset from scratch (replacing whatever was there), stamp last."""
    root = cache_dir / spec.name
    if root.exists():
        shutil.rmtree(root)
    source = root / "files"
    source.mkdir(parents=True)
    sizes = _file_sizes(spec, seed)
    rng = random.Random(f"{seed}:{spec.name}:bytes")
    pool = rng.randbytes(_POOL_SIZE) if spec.size >= 256 * KIB else None
    md5s: list[str | None] = []
    made_dirs: set[str] = set()
    for index, size in enumerate(sizes):
        rel = relative_path(spec, index)
        folder = rel.rpartition("/")[0]
        if folder and folder not in made_dirs:
            (source / folder).mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        md5s.append(_write_file(source / rel, size, rng, pool))
    md5_checked = all(m is not None for m in md5s)

    digest = ListingDigest(with_md5=md5_checked)
    if spec.manifest_lines:
        _write_manifests(spec, root, sizes, md5s, digest)
    else:
        for rel, size, md5 in sorted(_entries(spec, sizes, md5s), key=lambda e: e[0].encode()):
            digest.add(rel, size, md5)
    stamp = {
        "version": GENERATOR_VERSION,
        "seed": seed,
        "spec": asdict(spec),
        "files": digest.count,
        "bytes": digest.bytes,
        "listing_digest": digest.hexdigest(),
        "md5_checked": md5_checked,
    }
    tmp = root / (STAMP_NAME + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=1))
    os.replace(tmp, root / STAMP_NAME)
    return _dataset_from_stamp(spec, root, seed, stamp)


def _entries(spec: DatasetSpec, sizes: list[int],
             md5s: list[str | None]) -> Iterator[tuple[str, int, str | None]]:
    for index, (size, md5) in enumerate(zip(sizes, md5s, strict=True)):
        yield relative_path(spec, index), size, md5


def _write_manifests(spec: DatasetSpec, root: Path, sizes: list[int], md5s: list[str | None],
                     digest: ListingDigest) -> None:
    """The CSV manifest and the same job as an ``s5cmd run`` command file, streamed out.

    Keys are generated in sorted order, so the digest is fed as the lines are written.
    """
    source = (root / "files").resolve()
    with open(root / "manifest.csv", "w", newline="") as manifest, \
            open(root / "s5cmd-commands.txt", "w") as commands:
        writer = csv.writer(manifest)
        writer.writerow(["path", "key"])
        for line in range(spec.manifest_lines):
            index = line % spec.count
            path = source / relative_path(spec, index)
            key = manifest_key(line)
            writer.writerow([str(path), key])
            commands.write(f"cp {path} s3://{BUCKET}/{key}\n")
            digest.add(key, sizes[index], md5s[index])
