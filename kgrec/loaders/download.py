"""Download the public datasets that the adapters read, for users with internet.

Offline, point the adapters at a folder you already have (``kgrec load movielens PATH``); online,
``kgrec download NAME`` fetches the published files into ``$KGREC_DATA_DIR/datasets/<folder>`` first.
A download goes to a temporary folder beside the target and is moved into place only once every
expected file is there, so an interrupted download never leaves a half-filled dataset folder.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import KgrecError


@dataclass(frozen=True)
class Source:
    """Where a dataset is published: a zip (with the folder inside it) or single files."""

    folder: str
    expected: tuple[str, ...]
    zip_url: str | None = None
    zip_folder: str = ""  # the folder inside the zip that holds the files ("" = the zip's root)
    file_urls: tuple[str, ...] = ()
    terms: str = ""


_KGCN = "https://raw.githubusercontent.com/hwwang55/KGCN/master/data/music/"
_RECBOLE = "https://raw.githubusercontent.com/RUCAIBox/RecBole/master/recbole/dataset_example/ml-100k/"
SOURCES: dict[str, Source] = {
    "movielens": Source(
        folder="ml-latest-small",
        expected=("ratings.csv", "movies.csv", "links.csv", "tags.csv"),
        zip_url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        zip_folder="ml-latest-small",
        terms="GroupLens research licence: non-commercial use, cite Harper & Konstan (2015)",
    ),
    "hetrec-lastfm": Source(
        folder="hetrec-lastfm-2k",
        expected=("artists.dat", "tags.dat", "user_artists.dat", "user_friends.dat", "user_taggedartists.dat"),
        zip_url="https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
        terms="non-commercial use (Last.fm); cite HetRec 2011",
    ),
    "kgcn-lastfm": Source(
        folder="kgcn-lastfm",
        expected=("user_artists.dat", "kg.txt", "item_index2entity_id.txt"),
        file_urls=tuple(_KGCN + name for name in ("user_artists.dat", "kg.txt", "item_index2entity_id.txt")),
        terms="KGCN repository (MIT); interactions: HetRec Last.FM terms (non-commercial)",
    ),
    "recbole": Source(
        folder="recbole-ml100k-kg",
        expected=tuple(f"ml-100k.{ext}" for ext in ("inter", "item", "user", "kg", "link")),
        file_urls=tuple(_RECBOLE + f"ml-100k.{ext}" for ext in ("inter", "item", "user", "kg", "link")),
        terms="RecBole (MIT); MovieLens-100K: GroupLens terms (non-commercial, cite)",
    ),
}


class DownloadError(KgrecError):
    """A dataset could not be downloaded (no internet, a moved file, a damaged archive)."""


def download(name: str, data_dir: Path, *, force: bool = False, timeout: float = 60.0) -> Path:
    """Fetch dataset ``name`` into ``data_dir/datasets/<folder>`` and return that folder."""
    if name not in SOURCES:
        raise DownloadError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    target = data_dir / "datasets" / source.folder
    if target.is_dir() and all((target / f).is_file() for f in source.expected) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{source.folder}-") as tmp:
        staging = Path(tmp) / "files"
        staging.mkdir()
        if source.zip_url:
            archive = Path(tmp) / "archive.zip"
            _fetch(source.zip_url, archive, timeout)
            _unzip(archive, source.zip_folder, staging)
        for url in source.file_urls:
            _fetch(url, staging / url.rsplit("/", 1)[-1], timeout)
        missing = [f for f in source.expected if not (staging / f).is_file()]
        if missing:
            raise DownloadError(f"{name}: the download lacks {missing}; the published layout may have changed")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _fetch(url: str, path: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download {url}: {reason}. Without internet, download it elsewhere and pass its folder to `kgrec load`"
        ) from e


def _unzip(archive: Path, folder: str, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            prefix = f"{folder}/" if folder else ""
            for member in zf.infolist():
                name = member.filename
                if member.is_dir() or not name.startswith(prefix):
                    continue
                relative = Path(name[len(prefix):])
                if relative.is_absolute() or ".." in relative.parts:
                    raise DownloadError(f"refusing a zip member outside its folder: {name!r}")
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(staging / relative, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"the downloaded archive is damaged: {e}") from e
