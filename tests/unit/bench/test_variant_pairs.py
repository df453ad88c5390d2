"""benchmarks/variant_pairs.py: how a variant is named on its command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.variant_pairs import Variant

CHECKOUT = Path(__file__).resolve().parents[3]  # this checkout holds bulkput/


def test_a_variant_is_a_checkout_and_the_put_arguments_after_two_colons() -> None:
    variant = Variant.parse(f"mp64={CHECKOUT}::--multipart-threshold 64M --part-size 8M")
    assert variant == Variant(
        "mp64", CHECKOUT, ("--multipart-threshold", "64M", "--part-size", "8M")
    )
    assert Variant.parse(f"main={CHECKOUT}").args == ()


def test_a_folder_without_the_bulkput_package_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"variant old: {tmp_path} holds no bulkput package"):
        Variant.parse(f"old={tmp_path}")


@pytest.mark.parametrize("text", ["main", "=.", "main="])
def test_a_variant_without_name_or_checkout_is_refused(text: str) -> None:
    with pytest.raises(SystemExit, match="expected NAME=CHECKOUT"):
        Variant.parse(text)
