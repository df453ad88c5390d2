"""MD5 and CRC-64 helpers, checked against hashlib and oss2's own CRC-64."""

from __future__ import annotations

import base64
import hashlib
import random

import oss2.utils
import pytest

from bulkput.local.digest import (
    b64,
    b64_to_hex,
    crc64_combine,
    crc64_ecma,
    hash_file_range,
    hex_to_b64,
    md5_and_crc64_file,
    md5_bytes,
    md5_file,
)

CHECK_VALUE = 0x995DC9BBDF1939FA  # CRC-64/XZ of b"123456789"


def oss2_crc64(data: bytes) -> int:
    crc = oss2.utils.Crc64()
    crc.update(data)
    return int(crc.crc)


def test_crc64_check_value():
    assert crc64_ecma(b"123456789") == CHECK_VALUE
    assert crc64_ecma(b"") == 0


def test_crc64_matches_oss2_on_pieces_and_views():
    rng = random.Random(42)
    data = rng.randbytes(100_003)
    assert crc64_ecma(data[500:], crc64_ecma(data[:500])) == oss2_crc64(data)
    assert crc64_ecma(memoryview(bytearray(data))[:1000]) == oss2_crc64(data[:1000])


@pytest.mark.parametrize("seed", range(5))
def test_crc64_matches_oss2_on_random_data(seed):
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 200_000))
    expected = oss2_crc64(data)
    assert crc64_ecma(data) == expected
    # continuing from a previous CRC equals the CRC of the concatenation
    cut = rng.randrange(0, len(data) + 1)
    assert crc64_ecma(data[cut:], crc64_ecma(data[:cut])) == expected
    assert crc64_ecma(memoryview(bytearray(data))) == expected


@pytest.mark.parametrize("seed", range(5))
def test_crc64_combine_equals_crc_of_concatenation(seed):
    rng = random.Random(100 + seed)
    first = rng.randbytes(rng.randrange(0, 5000))
    second = rng.randbytes(rng.randrange(0, 5000))
    assert crc64_combine(crc64_ecma(first), crc64_ecma(second), len(second)) == oss2_crc64(
        first + second
    )


def test_md5_helpers_and_encodings():
    data = b"The quick brown fox jumps over the lazy dog"
    assert md5_bytes(data).hex() == "9e107d9d372bb6826bd81d3542a419d6"
    assert b64(md5_bytes(data)) == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert hex_to_b64("9e107d9d372bb6826bd81d3542a419d6") == b64(md5_bytes(data))
    assert b64_to_hex(b64(md5_bytes(data))) == "9e107d9d372bb6826bd81d3542a419d6"


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 10_000])
def test_md5_file_in_small_chunks(tmp_path, size):
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert md5_file(str(path), chunk_size=1024) == (hashlib.md5(data).digest(), size)


def test_md5_and_crc64_read_once(tmp_path):
    data = random.Random(7).randbytes(300_001)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    result = md5_and_crc64_file(str(path), want_crc=True, chunk_size=4096)
    assert result.md5 == hashlib.md5(data).digest()
    assert result.md5_hex == hashlib.md5(data).hexdigest()
    assert result.md5_b64 == b64(hashlib.md5(data).digest())
    assert result.size == len(data)
    assert result.crc64 == oss2_crc64(data)
    assert md5_and_crc64_file(str(path), want_crc=False).crc64 is None


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 10), (5, 4096), (4095, 4097), (100_000, 100), (0, 150_000), (149_990, 10)],
)
def test_hash_file_range_equals_hash_of_the_slice(tmp_path, offset, length):
    data = random.Random(offset).randbytes(150_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    part = data[offset : offset + length]
    result = hash_file_range(str(path), offset, length, want_crc=True, chunk_size=4096)
    assert (result.md5, result.size, result.crc64) == (
        hashlib.md5(part).digest(),
        len(part),
        oss2_crc64(part),
    )


def test_hash_file_range_reports_a_short_read(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abcdef")
    result = hash_file_range(str(path), 4, 10)
    assert result.size == 2 and result.md5 == hashlib.md5(b"ef").digest()


def test_parts_combine_to_the_whole_file_crc(tmp_path):
    data = random.Random(3).randbytes(50_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    part_size = 12_000
    whole = 0
    for offset in range(0, len(data), part_size):
        part = hash_file_range(str(path), offset, part_size, want_crc=True)
        assert part.crc64 is not None
        whole = crc64_combine(whole, part.crc64, part.size)
    assert whole == oss2_crc64(data)
