"""The dataset adapters against the shared copies of the four datasets (``shared/data``, see each PROVENANCE.md).

Expected counts are computed here from the raw files with the ``csv`` module, independently of the
adapters, and checked against the figures PROVENANCE.md states. The data is required: a missing folder
fails (it is never skipped).
"""

from __future__ import annotations

import csv
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from kgrec.loaders.adapters import (
    ADAPTERS,
    AdapterError,
    read_hetrec_lastfm,
    read_kgcn_lastfm,
    read_movielens,
    read_recbole,
)
from kgrec.loaders.dataset import ID_COLUMNS, Dataset

from tests.conftest import DATASET_FOLDERS as FOLDERS
from tests.conftest import SHARED_DATA as DATA


def folder(key: str) -> Path:
    path = DATA / FOLDERS[key]
    if not path.is_dir():
        pytest.fail(f"shared dataset folder not found: looked in {path} (set KGREC_SHARED_DATA to the folder holding {FOLDERS[key]})")
    return path


@cache
def load(key: str) -> Dataset:
    return ADAPTERS[key](folder(key))


def rows(path: Path, *, sep: str = "\t", header: bool = True, encoding: str = "utf-8") -> Iterator[list[str]]:
    """Raw rows with the csv module (tab files are unquoted; CRLF and LF both end a line)."""
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f, delimiter=sep, quoting=quoting)
        if header:
            next(reader)
        yield from reader


def check_integrity(ds: Dataset) -> None:
    """References resolve, ids are unique non-empty strings, relations are registered."""
    for table, frame in ds.tables().items():
        for column in ID_COLUMNS[table]:
            values = frame[column]
            assert pd.api.types.is_string_dtype(values) or values.dtype == object, (table, column, values.dtype)
            assert values.notna().all() and (values.map(type) == str).all(), (table, column)
            assert (values.str.strip() != "").all(), (table, column)
    items = set(ds.items["item_id"])
    assert set(ds.interactions["item_id"]) <= items
    assert not ds.interactions.duplicated(["user_id", "item_id", "kind"]).any()
    assert ds.items["item_id"].is_unique
    assert (ds.items["title"].str.strip() != "").all()
    assert ds.entities["entity_id"].is_unique
    assert ds.relations["relation"].is_unique
    entities = set(ds.entities["entity_id"])
    assert set(ds.item_entity["item_id"]) <= items
    assert set(ds.item_entity["entity_id"]) <= entities
    used = set(ds.item_entity["entity_id"])
    relations = set(ds.item_entity["relation"])
    if ds.entity_entity is not None:
        assert set(ds.entity_entity["head_id"]) | set(ds.entity_entity["tail_id"]) <= entities
        used |= set(ds.entity_entity["head_id"]) | set(ds.entity_entity["tail_id"])
        relations |= set(ds.entity_entity["relation"])
    assert used == entities, "entities linked to nothing"
    assert relations == set(ds.relations["relation"])
    assert (ds.entities["name"].str.strip() != "").all()
    if "timestamp" in ds.interactions:
        assert str(ds.interactions["timestamp"].dt.tz) == "UTC"


def test_shared_data_location() -> None:
    assert DATA.is_dir(), f"shared data not found: looked in {DATA}"
    if "KGREC_SHARED_DATA" not in os.environ:
        assert DATA == Path(__file__).resolve().parents[3] / "shared" / "data"


def test_adapters_by_key() -> None:
    assert ADAPTERS == {
        "hetrec-lastfm": read_hetrec_lastfm,
        "kgcn-lastfm": read_kgcn_lastfm,
        "movielens": read_movielens,
        "recbole": read_recbole,
    }


@pytest.mark.parametrize("key", sorted(FOLDERS))
def test_integrity(key: str) -> None:
    check_integrity(load(key))


# --------------------------------------------------------------------------------------------------
# HetRec Last.FM 2K


def test_hetrec_counts() -> None:
    path = folder("hetrec-lastfm")
    listens = list(rows(path / "user_artists.dat"))
    artists = {r[0]: r[1] for r in rows(path / "artists.dat")}
    friends = list(rows(path / "user_friends.dat"))
    tag_names = {r[0]: r[1] for r in rows(path / "tags.dat", encoding="latin-1")}
    taggers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for user, artist, tag, *_ in rows(path / "user_taggedartists.dat"):
        if artist in artists:
            taggers[artist, tag].add(user)
    knowledge = {pair for pair, users in taggers.items() if len(users) >= 2}

    ds = load("hetrec-lastfm")
    assert ds.name == "hetrec-lastfm"
    assert (len({r[0] for r in listens}), len(artists), len(listens), len(friends)) == (1892, 17632, 92834, 25434)
    assert ds.interactions["user_id"].nunique() == 1892
    assert len(ds.items) == len(artists) and len(ds.interactions) == len(listens)
    assert len(ds.user_links) == len(friends)
    assert set(ds.items["item_id"]) == set(artists)
    assert set(zip(ds.item_entity["item_id"], ds.item_entity["entity_id"].str.removeprefix("tag:"))) == knowledge
    assert len(ds.item_entity) == len(knowledge)
    assert len(ds.entities) == len({tag for _, tag in knowledge})
    assert dict(zip(ds.entities["entity_id"], ds.entities["name"])) == {f"tag:{t}": tag_names[t].strip() for _, t in knowledge}
    assert set(ds.entities["type"]) == {"tag"} and set(ds.item_entity["relation"]) == {"tagged_as"}
    assert ds.interactions["weight"].sum() == sum(float(r[2]) for r in listens)
    assert set(ds.interactions["kind"]) == {"listen"}
    diary = ds.items.set_index("item_id").loc["2"]
    assert diary["title"] == "Diary of Dreams" and diary["text"].startswith("Diary of Dreams. Tags: darkwave, gothic")
    assert diary["url"] == "http://www.last.fm/music/Diary+of+Dreams"


def write_hetrec(path: Path, tagged: list[tuple[str, str, str]]) -> Path:
    """A tiny HetRec folder: artists 10 and 11, tags 1-4 (latin-1), users 2-5, and ``tagged`` (user, artist, tag)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "artists.dat").write_text("id\tname\turl\tpictureURL\n10\tBand Ten\thttp://x/10\t\n11\tEleven\thttp://x/11\thttp://p/11\n")
    (path / "tags.dat").write_bytes("tagID\ttagValue\n1\tcrowd\n2\tprivate\n3\tself\n4\tcafé\n".encode("latin-1"))
    (path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t10\t5\n3\t10\t7\n4\t11\t1\n")
    (path / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n3\t2\n")
    body = "".join(f"{u}\t{a}\t{t}\t1\t1\t2010\n" for u, a, t in tagged)
    (path / "user_taggedartists.dat").write_text("userID\tartistID\ttagID\tday\tmonth\tyear\n" + body)
    return path


def test_hetrec_leakage_guard(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tagged = [
        ("2", "10", "1"), ("3", "10", "1"),  # two users: knowledge
        ("2", "10", "2"),  # one user: behaviour only
        ("4", "11", "3"), ("4", "11", "3"),  # one user twice: still one user
        ("3", "11", "4"), ("5", "11", "4"),  # two users, a latin-1 tag
        ("2", "99", "1"), ("3", "99", "1"),  # an artist missing from artists.dat
    ]
    with caplog.at_level(logging.INFO, logger="kgrec.loaders.adapters"):
        ds = read_hetrec_lastfm(write_hetrec(tmp_path / "h", tagged))
    check_integrity(ds)
    assert sorted(zip(ds.item_entity["item_id"], ds.item_entity["entity_id"])) == [("10", "tag:1"), ("11", "tag:4")]
    assert sorted(ds.entities["entity_id"]) == ["tag:1", "tag:4"]  # no orphan entities for tags 2 and 3
    assert dict(zip(ds.entities["entity_id"], ds.entities["name"]))["tag:4"] == "café"
    text = dict(zip(ds.items["item_id"], ds.items["text"]))
    assert text == {"10": "Band Ten. Tags: crowd", "11": "Eleven. Tags: café"}
    assert "private" not in " ".join(text.values()) and "self" not in " ".join(text.values())
    assert "99" not in set(ds.items["item_id"])
    assert "excluded 2 tag assignments on 1 artists missing from artists.dat" in caplog.text
    assert pd.isna(ds.items.set_index("item_id").loc["10", "picture_url"])  # empty in the file

    stricter = read_hetrec_lastfm(tmp_path / "h", min_taggers=3)
    assert len(stricter.item_entity) == 0 and len(stricter.entities) == 0
    assert set(stricter.items["text"]) == {"Band Ten", "Eleven"}


@pytest.mark.parametrize("bad", [1, 0, 2.5, True])
def test_min_taggers_below_two_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(AdapterError, match=rf"'min_taggers' \(got {bad!r}\)"):
        read_hetrec_lastfm(write_hetrec(tmp_path / "h", []), min_taggers=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# KGCN Last.FM


def test_kgcn_counts() -> None:
    path = folder("kgcn-lastfm")
    entity_of = {artist: entity for artist, entity in rows(path / "item_index2entity_id.txt", header=False)}
    item_of = {entity: artist for artist, entity in entity_of.items()}
    listens = [r for r in rows(path / "user_artists.dat") if r[1] in entity_of]
    triples = list(rows(path / "kg.txt", header=False))
    names = {r[0]: r[1] for r in rows(folder("hetrec-lastfm") / "artists.dat")}

    ds = load("kgcn-lastfm")
    assert ds.name == "kgcn-lastfm"
    counts = (len({r[0] for r in listens}), len(entity_of), len(listens), len(triples))
    assert counts == (1872, 3846, 21173, 15518)
    assert (ds.interactions["user_id"].nunique(), len(ds.items), len(ds.interactions), len(ds.item_entity)) == counts
    assert ds.interactions["item_id"].nunique() == 3846
    assert ds.entity_entity is None  # every head is an item
    assert all("\r" not in t for _, _, t in triples)
    assert len({r for _, r, _ in triples}) == 60 == len(ds.relations)
    assert len(ds.entities) == len({t for _, _, t in triples})
    onto_items = [(h, r, t) for h, r, t in triples if t in item_of]
    assert len(onto_items) == 56
    expected = sorted((item_of[h], r, f"satori:{t}") for h, r, t in triples)
    assert sorted(ds.item_entity.itertuples(index=False, name=None)) == expected
    artists = ds.entities[ds.entities["type"] == "artist"].set_index("entity_id")["name"]
    for _, _, t in onto_items:
        assert artists[f"satori:{t}"] == names[item_of[t]]
    anonymous = ds.entities[~ds.entities["entity_id"].isin([f"satori:{t}" for *_, t in onto_items])]
    assert (anonymous["name"] == anonymous["entity_id"]).all()
    titles = dict(zip(ds.items["item_id"], ds.items["title"]))
    assert titles == {a: names[a] for a in entity_of}
    types = dict(zip(ds.entities["entity_id"], ds.entities["type"]))
    origin = next(t for h, r, t in triples if r == "music.artist.origin" and t not in item_of)
    assert types[f"satori:{origin}"] in {r.rsplit(".", 1)[-1] for _, r, t in triples if t == origin}


def test_kgcn_without_names(tmp_path: Path) -> None:
    path = tmp_path / "kgcn"
    path.mkdir()
    (path / "item_index2entity_id.txt").write_bytes(b"7\t0\r\n8\t1\r\n")
    (path / "kg.txt").write_bytes(
        b"0\tmusic.artist.origin\t2\r\n1\tfilm.actor.film\t0\r\n0\tmusic.artist.genre\t3\r\n1\tmusic.artist.genre\t3\r\n"
        b"5\tmusic.genre.parent_genre\t3\r\n"  # a head that is no item: entity_entity
    )
    (path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t7\t3\n2\t9\t4\n3\t8\t1\n")
    ds = read_kgcn_lastfm(path)
    check_integrity(ds)
    assert dict(zip(ds.items["item_id"], ds.items["title"])) == {"7": "artist 7", "8": "artist 8"}
    assert len(ds.interactions) == 2  # artist 9 has no KG entity
    entities = {e: (n, t) for e, n, t in ds.entities.itertuples(index=False, name=None)}
    assert entities == {
        "satori:2": ("satori:2", "origin"),
        "satori:0": ("artist 7", "artist"),
        "satori:3": ("satori:3", "genre"),
        "satori:5": ("satori:5", "genre"),  # never a tail: typed by the relation's subject type
    }
    assert list(ds.entity_entity.itertuples(index=False, name=None)) == [("satori:5", "music.genre.parent_genre", "satori:3")]
    assert len(ds.item_entity) == 4
    with pytest.raises(AdapterError, match="'names_from'"):
        read_kgcn_lastfm(path, names_from=tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------------
# MovieLens latest-small


def test_movielens_counts() -> None:
    path = folder("movielens")
    ratings = list(rows(path / "ratings.csv", sep=","))
    movies = list(rows(path / "movies.csv", sep=","))
    links = list(rows(path / "links.csv", sep=","))
    genre_rows = {(m, g) for m, _, gs in movies for g in gs.split("|") if g != "(no genres listed)"}
    taggers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for user, movie, tag, _ in rows(path / "tags.csv", sep=","):
        taggers[movie, tag.strip().lower()].add(user)
    knowledge = {pair for pair, users in taggers.items() if len(users) >= 2}

    ds = load("movielens")
    assert ds.name == "movielens"
    assert (len({r[0] for r in ratings}), len(ratings), len(movies)) == (610, 100836, 9742)
    assert (ds.interactions["user_id"].nunique(), len(ds.interactions), len(ds.items)) == (610, 100836, 9742)
    assert ds.interactions["item_id"].nunique() == 9724
    assert ds.interactions["rating"].sum() == pytest.approx(sum(float(r[2]) for r in ratings))
    assert set(ds.interactions["kind"]) == {"rating"} and (ds.interactions["weight"] == 1.0).all()
    stamps = ds.interactions["timestamp"]
    assert stamps.min().date().isoformat() == "1996-03-29" and stamps.max().date().isoformat() == "2018-09-24"
    assert (stamps.astype("int64") // 10**6 == [int(r[3]) for r in ratings]).all()  # microseconds -> seconds

    genres = ds.item_entity[ds.item_entity["relation"] == "has_genre"]
    assert set(zip(genres["item_id"], genres["entity_id"].str.removeprefix("genre:"))) == genre_rows
    tags = ds.item_entity[ds.item_entity["relation"] == "tagged_as"]
    assert set(zip(tags["item_id"], tags["entity_id"].str.removeprefix("tag:"))) == knowledge
    assert len(ds.item_entity) == len(genre_rows) + len(knowledge)
    n_genres = len({g for _, g in genre_rows})
    assert n_genres == 19
    assert len(ds.entities) == n_genres + len({t for _, t in knowledge})

    by_id = ds.items.set_index("item_id")
    assert by_id.loc["1", "text"].startswith("Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy")
    assert by_id.loc["1", "imdb_id"] == "0114709" and by_id.loc["1", "tmdb_id"] == "862"
    assert by_id["tmdb_id"].isna().sum() == sum(1 for r in links if r[2] == "") == 8
    no_genres = [m for m, _, gs in movies if gs == "(no genres listed)"]
    assert not by_id.loc[no_genres, "text"].str.contains("Genres").any()
    in_text = {(m, t) for m, text in by_id["text"].items() if ". Tags: " in text for t in text.split(". Tags: ")[1].split(", ")}
    assert in_text == knowledge  # every aggregated tag is in the text (<= 20 per movie here), no single user's tag is


def test_movielens_leakage_guard(tmp_path: Path) -> None:
    path = tmp_path / "ml"
    path.mkdir()
    (path / "movies.csv").write_text('movieId,title,genres\r\n1,"Heat, The (1995)",Action|Crime\r\n2,Solo (2000),(no genres listed)\r\n')
    (path / "links.csv").write_text("movieId,imdbId,tmdbId\r\n1,0113277,949\r\n2,0000002,\r\n")
    (path / "ratings.csv").write_text("userId,movieId,rating,timestamp\r\n1,1,4.5,964982703\r\n2,2,3.0,964982704\r\n")
    (path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\r\n1,1,Heist ,1\r\n2,1,heist,2\r\n1,2,secret,3\r\n1,2,Secret,4\r\n"
    )
    ds = read_movielens(path)
    check_integrity(ds)
    assert sorted(ds.item_entity.itertuples(index=False, name=None)) == [
        ("1", "has_genre", "genre:Action"), ("1", "has_genre", "genre:Crime"), ("1", "tagged_as", "tag:heist")]
    assert dict(zip(ds.items["item_id"], ds.items["text"])) == {
        "1": "Heat, The (1995). Genres: Action, Crime. Tags: heist", "2": "Solo (2000)"}
    assert pd.isna(ds.items.set_index("item_id").loc["2", "tmdb_id"])


# --------------------------------------------------------------------------------------------------
# RecBole ml-100k + Freebase


def test_recbole_counts() -> None:
    path = folder("recbole")
    inter = list(rows(path / "ml-100k.inter"))
    items = {r[0]: r for r in rows(path / "ml-100k.item")}
    mid_item = {mid: item for item, mid in rows(path / "ml-100k.link")}
    triples = list(rows(path / "ml-100k.kg"))
    forward = [(h, r, t) for h, r, t in triples if h in mid_item and t not in mid_item]
    inverse = [(h, r, t) for h, r, t in triples if h not in mid_item and t in mid_item]
    item_item = [(h, r, t) for h, r, t in triples if h in mid_item and t in mid_item]
    neither = [(h, r, t) for h, r, t in triples if h not in mid_item and t not in mid_item]
    entities = {x for h, _, t in triples for x in (h, t) if x not in mid_item} | {t for _, _, t in item_item}

    ds = load("recbole")
    assert ds.name == "recbole-ml-100k"
    assert (len({r[0] for r in inter}), len(items), len(inter), len(triples)) == (943, 1682, 100000, 91631)
    assert (ds.interactions["user_id"].nunique(), len(ds.items), len(ds.interactions)) == (943, 1682, 100000)
    assert (len(mid_item), len(inverse), len(item_item), len(neither)) == (1598, 19039, 114, 0)
    n_ee = 0 if ds.entity_entity is None else len(ds.entity_entity)
    assert len(ds.item_entity) + n_ee == len(triples)
    expected = sorted(
        [(mid_item[h], r, f"fb:{t}") for h, r, t in forward + item_item]
        + [(mid_item[t], f"inverse:{r}", f"fb:{h}") for h, r, t in inverse]
    )
    assert sorted(ds.item_entity.itertuples(index=False, name=None)) == expected
    assert set(ds.entities["entity_id"]) == {f"fb:{e}" for e in entities}
    films = ds.entities[ds.entities["type"] == "film"].set_index("entity_id")["name"]
    for _, _, t in item_item:
        assert films[f"fb:{t}"] == items[mid_item[t]][1]
    anonymous = ds.entities[ds.entities["entity_id"].str.removeprefix("fb:").isin(entities - {t for *_, t in item_item})]
    assert (anonymous["entity_id"] == "fb:" + anonymous["name"]).all()
    types = dict(zip(ds.entities["entity_id"], ds.entities["type"]))
    genre = next(t for h, r, t in forward if r == "film.film.genre")
    assert types[f"fb:{genre}"] == "genre"
    names = {r for _, r, _ in forward + item_item + neither} | {f"inverse:{r}" for _, r, _ in inverse}
    assert set(ds.relations["relation"]) == names and len(names) == 29

    by_id = ds.items.set_index("item_id")
    assert by_id.loc["1", "text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert by_id.loc["1", "release_year"] == 1995
    assert by_id["release_year"].isna().sum() == sum(1 for r in items.values() if not r[2].isdigit()) == 2
    assert ds.interactions["rating"].sum() == sum(float(r[2]) for r in inter)
    assert (ds.interactions["timestamp"].astype("int64") // 10**6 == [int(float(r[3])) for r in inter]).all()


def test_recbole_triple_kinds(tmp_path: Path) -> None:
    path = tmp_path / "rb"
    path.mkdir()
    (path / "tiny.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t881250949.0\n")
    (path / "tiny.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tHeat\t1995\tAction Crime\n11\tunkonwn\tunkonwn\tunknown\n"
    )
    (path / "tiny.link").write_text("item_id:token\tentity_id:token\n10\tm.heat\n11\tm.other\n")
    (path / "tiny.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\n"
        "m.heat\tfilm.film.genre\tm.crime\n"  # item -> entity
        "m.crime\tfilm.film_genre.films_in_this_genre\tm.heat\n"  # entity -> item: inverse
        "m.heat\tfilm.film.sequel\tm.other\n"  # item -> item
        "m.mann\tfilm.director.film\tm.heat\n"  # entity -> item, never a tail
        "m.crime\tmedia_common.netflix_genre.titles\tm.x\n"  # entity -> entity
    )
    ds = read_recbole(path)
    check_integrity(ds)
    assert ds.name == "recbole-tiny"
    assert list(ds.item_entity.itertuples(index=False, name=None)) == [
        ("10", "film.film.genre", "fb:m.crime"),
        ("10", "inverse:film.film_genre.films_in_this_genre", "fb:m.crime"),
        ("10", "film.film.sequel", "fb:m.other"),
        ("10", "inverse:film.director.film", "fb:m.mann"),
    ]
    assert list(ds.entity_entity.itertuples(index=False, name=None)) == [
        ("fb:m.crime", "media_common.netflix_genre.titles", "fb:m.x")]
    entities = {e: (n, t) for e, n, t in ds.entities.itertuples(index=False, name=None)}
    assert entities == {
        "fb:m.crime": ("m.crime", "genre"),
        "fb:m.other": ("unkonwn", "film"),
        "fb:m.mann": ("m.mann", "director"),
        "fb:m.x": ("m.x", "titles"),
    }
    assert dict(zip(ds.items["item_id"], ds.items["text"])) == {"10": "Heat (1995). Genres: Action, Crime", "11": "unkonwn"}
    assert ds.interactions["timestamp"].iloc[0] == pd.Timestamp(881250949, unit="s", tz="UTC")


# --------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "key, first_file",
    [("hetrec-lastfm", "artists.dat"), ("kgcn-lastfm", "user_artists.dat"), ("movielens", "ratings.csv"), ("recbole", "ml-100k.inter")],
)
def test_missing_file_names_it(tmp_path: Path, key: str, first_file: str) -> None:
    with pytest.raises(AdapterError, match=rf"^{key}: .* has no {first_file} \(expected files: "):
        ADAPTERS[key](tmp_path)


def test_missing_file_in_an_otherwise_complete_folder(tmp_path: Path) -> None:
    path = write_hetrec(tmp_path / "h", [])
    (path / "user_taggedartists.dat").unlink()
    with pytest.raises(AdapterError) as info:
        read_hetrec_lastfm(path)
    assert str(info.value).startswith(f"hetrec-lastfm: {path} has no user_taggedartists.dat (expected files: artists.dat")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="is not a folder"):
        read_movielens(tmp_path / "absent")


def test_bad_number_is_named(tmp_path: Path) -> None:
    path = write_hetrec(tmp_path / "h", [])
    (path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t10\tmany\n")
    with pytest.raises(AdapterError, match=r"user_artists.dat has 'weight' \(got 'many'\)"):
        read_hetrec_lastfm(path)


def write_movielens(path: Path, timestamp: str) -> Path:
    path.mkdir()
    (path / "movies.csv").write_text("movieId,title,genres\n1,Heat (1995),Action\n")
    (path / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0113277,949\n")
    (path / "ratings.csv").write_text(f"userId,movieId,rating,timestamp\n1,1,4.5,964982703\n2,1,3.0,{timestamp}\n")
    (path / "tags.csv").write_text("userId,movieId,tag,timestamp\n")
    return path


def write_recbole(path: Path, timestamp: str) -> Path:
    path.mkdir()
    (path / "tiny.inter").write_text(
        f"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t881250949.0\n2\t10\t3\t{timestamp}\n")
    (path / "tiny.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tHeat\t1995\tAction\n")
    (path / "tiny.link").write_text("item_id:token\tentity_id:token\n10\tm.heat\n")
    (path / "tiny.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nm.heat\tfilm.film.genre\tm.crime\n")
    return path


@pytest.mark.parametrize("timestamp", ["99999999999999999", "inf", "-inf", "1e12", "-1e11"])
@pytest.mark.parametrize("key, write, file", [("movielens", write_movielens, "ratings.csv"),
                                              ("recbole-tiny", write_recbole, "tiny.inter")])
def test_timestamp_out_of_range_is_named_with_its_row(tmp_path: Path, timestamp: str, key: str, write, file: str) -> None:
    path = write(tmp_path / "d", timestamp)
    with pytest.raises(AdapterError) as info:
        ADAPTERS[key.partition("-tiny")[0]](path)
    assert str(info.value) == (
        f"{key}: {path / file} has 'timestamp' (got {timestamp!r}) in data row 2, "
        "which is not Unix seconds between the years 1 and 9999"
    )


def test_timestamp_at_the_range_ends_is_kept(tmp_path: Path) -> None:
    ds = read_movielens(write_movielens(tmp_path / "d", "253402300799"))
    assert ds.interactions["timestamp"].iloc[1] == pd.Timestamp("9999-12-31T23:59:59Z")
