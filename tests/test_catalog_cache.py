"""The parsed-catalog cache: used when the files are unchanged, ignored when corrupted,
rebuilt when a file changes, off when ``CHIPMIX_CACHE_DIR`` is empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from chipmix.catalog.cache import CACHE_ENV, cached, fingerprint
from chipmix.catalog.catalog import DATA_DIR, Catalog


class Counter:
    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> Catalog:
        self.reads += 1
        catalog = Catalog()
        catalog.read_folder(DATA_DIR)
        return catalog


def test_second_read_comes_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    read = Counter()
    first = cached(DATA_DIR, Catalog, read)
    second = cached(DATA_DIR, Catalog, read)
    assert read.reads == 1
    assert second.chips == first.chips
    assert second.offers == first.offers


@pytest.mark.parametrize("junk", [b"", b"not a pickle", b"\x80\x05garbage", b"\x00" * 100])
def test_corrupted_entry_is_read_again(
    junk: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    (tmp_path / f"catalog-{fingerprint(DATA_DIR)}.pickle").write_bytes(junk)
    read = Counter()
    assert cached(DATA_DIR, Catalog, read).chips
    assert read.reads == 1
    assert cached(DATA_DIR, Catalog, read).chips  # rewritten: read from the cache now
    assert read.reads == 1


def test_a_changed_file_changes_the_key(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: 1\n")
    before = fingerprint(tmp_path)
    (tmp_path / "a.yaml").write_text("x: 22\n")
    assert fingerprint(tmp_path) != before


def test_the_key_covers_nested_files_and_names_but_not_skipped_folders(tmp_path: Path) -> None:
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / "a.yaml").write_text("x: 1\n")
    (tmp_path / "__pycache__").mkdir()
    before = fingerprint(tmp_path, skip=frozenset({"__pycache__"}))
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\x00")
    assert fingerprint(tmp_path, skip=frozenset({"__pycache__"})) == before
    assert fingerprint(tmp_path) != before
    (tmp_path / "chips" / "a.yaml").write_text("x: 22\n")
    changed = fingerprint(tmp_path, skip=frozenset({"__pycache__"}))
    assert changed != before
    (tmp_path / "chips" / "a.yaml").rename(tmp_path / "chips" / "b.yaml")
    assert fingerprint(tmp_path, skip=frozenset({"__pycache__"})) not in {before, changed}


def test_empty_setting_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "")
    read = Counter()
    cached(DATA_DIR, Catalog, read)
    cached(DATA_DIR, Catalog, read)
    assert read.reads == 2


def test_unwritable_cache_folder_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    assert cached(DATA_DIR, Catalog, Counter()).chips
