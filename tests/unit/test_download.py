"""Downloads, against file:// URLs (this machine has no internet; the logic is the same)."""

import zipfile
from pathlib import Path

import pytest

from kgrec.loaders import download as dl
from kgrec.loaders.download import DownloadError, Source, download


@pytest.fixture
def zipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    archive = tmp_path / "pub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pub/a.csv", "x\n1\n")
        zf.writestr("pub/b.csv", "y\n2\n")
        zf.writestr("other/ignored.txt", "-")
    monkeypatch.setitem(dl.SOURCES, "pub", Source("pub-folder", ("a.csv", "b.csv"), zip_url=archive.as_uri(), zip_folder="pub"))
    return archive


def test_zip_download_lands_complete(zipped: Path, tmp_path: Path) -> None:
    folder = download("pub", tmp_path / "data")
    assert folder == tmp_path / "data" / "datasets" / "pub-folder"
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv"]
    assert (folder / "b.csv").read_text() == "y\n2\n"
    assert download("pub", tmp_path / "data") == folder  # complete: not fetched again


def test_file_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "one.dat").write_text("1")
    monkeypatch.setitem(dl.SOURCES, "files", Source("f", ("one.dat",), file_urls=((tmp_path / "one.dat").as_uri(),)))
    assert (download("files", tmp_path / "data") / "one.dat").read_text() == "1"


def test_failed_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dl.SOURCES, "gone", Source("g", ("x",), file_urls=((tmp_path / "missing.dat").as_uri(),)))
    with pytest.raises(DownloadError, match="cannot download .*missing.dat.* pass its folder to `kgrec load`"):
        download("gone", tmp_path / "data")
    assert list((tmp_path / "data" / "datasets").iterdir()) == []


def test_incomplete_archive_is_refused(zipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dl.SOURCES, "pub", Source("pub-folder", ("a.csv", "c.csv"), zip_url=zipped.as_uri(), zip_folder="pub"))
    with pytest.raises(DownloadError, match=r"lacks \['c.csv'\]"):
        download("pub", tmp_path / "data")
    assert not (tmp_path / "data" / "datasets" / "pub-folder").exists()


def test_unknown_dataset() -> None:
    with pytest.raises(DownloadError, match="unknown dataset 'imdb'"):
        download("imdb", Path("/tmp"))


def test_every_source_expects_what_its_adapter_reads() -> None:
    from kgrec.loaders.adapters import ADAPTERS

    assert set(dl.SOURCES) == set(ADAPTERS)
