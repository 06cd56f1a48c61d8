"""Dataset adapters: public recommendation datasets read into kgrec's generic :class:`Dataset`.

Each adapter is a pure-pandas function ``read_X(path) -> Dataset`` (no Neo4j): it reads one dataset
folder exactly as published (encodings, line endings, typed headers), turns every id into a string and
separates what users *did* (``interactions``, ``user_links``: behaviour) from what is *true of items*
(``items``, ``entities``, ``item_entity``, ``entity_entity``: knowledge). ``docs/adapters.md`` says,
per dataset, which file becomes which table and how many rows the shared copies produce.

=================  ================================  =========================================================
key                function                          folder (``shared/data/...``)
=================  ================================  =========================================================
``hetrec-lastfm``  :func:`read_hetrec_lastfm`        ``hetrec-lastfm-2k``: HetRec 2011 Last.FM 2K
``kgcn-lastfm``    :func:`read_kgcn_lastfm`          ``kgcn-lastfm``: Last.FM + Microsoft Satori KG (KGCN)
``movielens``      :func:`read_movielens`            ``ml-latest-small``: MovieLens latest-small
``recbole``        :func:`read_recbole`              ``recbole-ml100k-kg``: RecBole atomic files, ML-100K + Freebase
=================  ================================  =========================================================

**Leakage guard.** A user's own tag on an item (HetRec's ``user_taggedartists.dat``, MovieLens'
``tags.csv``) reveals that user's interaction with the item, which may be held out for evaluation. Such
annotations are behaviour: they become item knowledge (a ``tagged_as`` triple, or words in the item's
text) only when at least ``min_taggers`` (default 2, never fewer) *distinct* users applied the same tag to
the same item, and the per-user assignments are not loaded. What each adapter drops or excludes is
logged at ``INFO`` on this module's logger.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from kgrec.errors import KgrecError
from kgrec.loaders.dataset import TIME_RANGE, Dataset

log = logging.getLogger(__name__)

MAX_TEXT_TAGS = 20  # at most this many aggregated tags go into an item's text
HETREC_FILES = ("artists.dat", "tags.dat", "user_artists.dat", "user_friends.dat", "user_taggedartists.dat")
KGCN_FILES = ("user_artists.dat", "item_index2entity_id.txt", "kg.txt")
MOVIELENS_FILES = ("ratings.csv", "movies.csv", "links.csv", "tags.csv")
RECBOLE_SUFFIXES = (".inter", ".item", ".kg", ".link")
UNIX_SECONDS = tuple(t.timestamp() for t in TIME_RANGE)  # the times Python's datetime can hold, in Unix seconds


class AdapterError(KgrecError):
    """A dataset folder lacks a file, or holds a file that is not in the dataset's published format."""


# --------------------------------------------------------------------------------------------------
# reading helpers


def _folder(dataset: str, path: str | Path, expected: Sequence[str]) -> Path:
    """The dataset folder, once every expected file is known to be there."""
    folder = Path(path).expanduser()
    listing = ", ".join(expected)
    if not folder.is_dir():
        raise AdapterError(f"{dataset}: {folder} is not a folder (expected one with the files: {listing})")
    for name in expected:
        if not (folder / name).is_file():
            raise AdapterError(f"{dataset}: {folder} has no {name} (expected files: {listing})")
    return folder


def _read(
    dataset: str,
    path: Path,
    columns: Sequence[str],
    *,
    sep: str = "\t",
    header: bool = True,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_NONE,
) -> pd.DataFrame:
    """One delimited file as text columns (nothing parsed, nothing treated as missing).

    With ``header=True`` the file's header must hold ``columns`` (RecBole's ``name:type`` suffixes are
    stripped first); otherwise the file has exactly ``len(columns)`` fields and gets these names. The C
    parser takes ``\\n`` and ``\\r\\n`` line ends alike, so no ``\\r`` survives in the last column.
    """
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=None if header else list(columns),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=quoting,
            encoding=encoding,
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise AdapterError(f"{dataset}: cannot read {path} as {encoding} text: {e}") from e
    short = frame.isna().any(axis=1).to_numpy()
    if short.any():
        row = int(short.nonzero()[0][0]) + 1
        raise AdapterError(f"{dataset}: {path} data row {row} has fewer than {len(frame.columns)} fields")
    if header:
        frame.columns = [str(c).partition(":")[0].strip() for c in frame.columns]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise AdapterError(
                f"{dataset}: {path} has columns {list(frame.columns)}, expected {list(columns)} (missing {missing})"
            )
        frame = frame[list(columns)]
    for column in frame.columns:
        if frame[column].str.contains("\r", regex=False).any():
            raise AdapterError(f"{dataset}: {path} has a stray carriage return in column {column!r}")
    return frame


def _ids(dataset: str, path: Path, frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` stripped; an empty id is an error naming the file and the row."""
    for column in columns:
        values = frame[column].str.strip()
        empty = values == ""
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0]) + 1
            raise AdapterError(f"{dataset}: {path} has an empty {column!r} in data row {row}")
        frame[column] = values
    return frame


def _numbers(dataset: str, path: Path, raw: pd.Series) -> pd.Series:
    """``raw`` as float; a value that is not a number is an error naming it."""
    number = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = number.isna()
    if bad.any():
        first = raw[bad].iloc[0]
        raise AdapterError(f"{dataset}: {path} has {raw.name!r} (got {first!r}), which is not a number")
    return number


def _utc_seconds(dataset: str, path: Path, raw: pd.Series) -> pd.Series:
    """Unix seconds (integer or float text) as a UTC ``datetime64`` column; a value that is not a number, or
    not a time between the years 1 and 9999 (``inf``, ``99999999999999999``), is an error naming it and its row."""
    seconds = _numbers(dataset, path, raw)
    bad = ~seconds.between(UNIX_SECONDS[0], UNIX_SECONDS[1])  # also infinities
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 1
        raise AdapterError(
            f"{dataset}: {path} has {raw.name!r} (got {raw[bad].iloc[0]!r}) in data row {row}, which is not Unix "
            "seconds between the years 1 and 9999"
        )
    return pd.to_datetime(seconds, unit="s", utc=True)


def _unique(dataset: str, path: Path, frame: pd.DataFrame, key: Sequence[str]) -> None:
    duplicated = frame.duplicated(list(key))
    if duplicated.any():
        first = frame.loc[duplicated, list(key)].iloc[0].tolist()
        raise AdapterError(f"{dataset}: {path} repeats the key {list(key)} (got {first} more than once)")


def _check_min_taggers(min_taggers: int) -> None:
    if isinstance(min_taggers, bool) or not isinstance(min_taggers, int) or min_taggers < 2:
        raise AdapterError(
            f"'min_taggers' (got {min_taggers!r}) must be an integer >= 2: one user's tag is that user's behaviour"
        )


def _add_missing_items(dataset: str, items: pd.DataFrame, interactions: pd.DataFrame, noun: str) -> pd.DataFrame:
    """``items`` plus a bare row (title ``"<noun> <id>"``) for every interacted item it lacks."""
    missing = pd.Index(interactions["item_id"].unique()).difference(pd.Index(items["item_id"]))
    if len(missing) == 0:
        return items
    log.warning("%s: %d interacted items have no metadata; titled '%s <id>'", dataset, len(missing), noun)
    extra = pd.DataFrame({"item_id": missing.astype(str), "title": noun + " " + missing.astype(str)})
    extra["text"] = extra["title"]
    return pd.concat([items, extra], ignore_index=True)


def _aggregate_tags(assignments: pd.DataFrame, min_taggers: int) -> tuple[pd.DataFrame, int]:
    """Tags that at least ``min_taggers`` distinct users applied to the same item.

    Args:
        assignments: one row per (``user_id``, ``item_id``, ``tag``) assignment, repeats allowed.
        min_taggers: the least number of distinct users.

    Returns:
        ``(kept, dropped)``: the kept (``item_id``, ``tag``, ``taggers``) pairs sorted by item, then
        ``taggers`` descending, then tag; and how many (item, tag) pairs fell below the threshold.
    """
    pairs = (
        assignments.drop_duplicates(["user_id", "item_id", "tag"])
        .groupby(["item_id", "tag"], sort=False)
        .size()
        .rename("taggers")
        .reset_index()
    )
    kept = pairs[pairs["taggers"] >= min_taggers]
    kept = kept.sort_values(["item_id", "taggers", "tag"], ascending=[True, False, True], ignore_index=True)
    return kept, len(pairs) - len(kept)


def _tag_text(kept: pd.DataFrame, names: pd.Series) -> pd.Series:
    """``"Tags: a, b, ..."`` per item id (at most :data:`MAX_TEXT_TAGS`, most taggers first)."""
    top = kept.groupby("item_id", sort=False).head(MAX_TEXT_TAGS)
    words = top["tag"].map(names)
    return "Tags: " + words.groupby(top["item_id"], sort=False).agg(", ".join)


def _type_by_tail(triples: pd.DataFrame, entity: str, relation: str) -> pd.Series:
    """Each entity's type: the last dotted segment of the relation it is most often the tail of.

    Ties go to the alphabetically first segment, so the result does not depend on row order.
    """
    votes = pd.DataFrame({"entity_id": triples[entity], "type": triples[relation].str.rsplit(".", n=1).str[-1]})
    counts = votes.groupby(["entity_id", "type"], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values(["entity_id", "n", "type"], ascending=[True, False, True])
    return counts.drop_duplicates("entity_id").set_index("entity_id")["type"]


def _type_by_head(triples: pd.DataFrame, entity: str, relation: str) -> pd.Series:
    """Each entity's type from the relations it heads: the middle segment (``film.producer.film`` -> ``producer``).

    Freebase names a relation ``domain.type.property`` after its subject's type; the most frequent wins,
    ties alphabetically.
    """
    subject = triples[relation].str.split(".").str[-2].fillna(triples[relation])
    return _type_by_tail(pd.DataFrame({"entity": triples[entity], "relation": subject}), "entity", "relation")


def _relations(names: pd.Series, describe: Callable[[str], str]) -> pd.DataFrame:
    unique = sorted(names.unique())
    return pd.DataFrame({"relation": unique, "description": [describe(name) for name in unique]})


def _join_parts(first: pd.Series, *rest: pd.Series) -> pd.Series:
    """``first``, then each present (non-missing) part of ``rest``, joined by ``". "``."""
    text = first.astype(str)
    for part in rest:
        text = text.where(part.isna(), text + ". " + part.fillna(""))
    return text


def _item_entity(item_id: pd.Series, relation: pd.Series | str, entity_id: pd.Series) -> pd.DataFrame:
    """An ``item_entity`` table from aligned columns (``relation`` may be one name for every row)."""
    return pd.DataFrame({"item_id": item_id, "relation": relation, "entity_id": entity_id}).reset_index(drop=True)


def _or_none(frame: pd.DataFrame) -> pd.DataFrame | None:
    return frame if len(frame) else None


def _blank_to_na(values: pd.Series) -> pd.Series:
    return values.mask(values.str.strip() == "")


# --------------------------------------------------------------------------------------------------
# HetRec 2011 Last.FM 2K


def read_hetrec_lastfm(path: str | Path, *, min_taggers: int = 2) -> Dataset:
    """HetRec 2011 Last.FM 2K: listening counts, friendships, artists and their crowd tags.

    ============================  ==================================================================
    file                          becomes
    ============================  ==================================================================
    ``user_artists.dat``          ``interactions``: ``weight`` = play count, ``kind`` = ``"listen"``
    ``artists.dat`` (UTF-8)       ``items``: ``title`` = name, attributes ``url``, ``picture_url``
    ``user_friends.dat``          ``user_links`` (both directions are in the file; all rows kept)
    ``tags.dat`` (latin-1)        ``entities`` ``tag:<tagID>`` (``type`` ``"tag"``), only those used
    ``user_taggedartists.dat``    aggregated: ``item_entity`` (``tagged_as``) and the items' ``text``
    ============================  ==================================================================

    Leakage guard: a tag becomes knowledge of an artist (a ``tagged_as`` row, and a word of the
    artist's text) only when at least ``min_taggers`` distinct users applied it to that artist; the
    per-user assignments are not loaded. Tag assignments on artists missing from ``artists.dat``, and
    on tag ids missing from ``tags.dat``, are excluded; their counts are logged.

    An item's ``text`` is its name, then its aggregated tags, most distinct taggers first (ties
    alphabetical), at most :data:`MAX_TEXT_TAGS`: ``"Diary of Dreams. Tags: darkwave, gothic"``.

    Args:
        path: the folder holding the five ``.dat`` files.
        min_taggers: the least number of distinct users who must have applied a tag to an artist
            (at least 2). (default: ``2``)
    """
    name = "hetrec-lastfm"
    _check_min_taggers(min_taggers)
    folder = _folder(name, path, HETREC_FILES)

    p = folder / "user_artists.dat"
    listens = _ids(name, p, _read(name, p, ["userID", "artistID", "weight"]), ["userID", "artistID"])
    _unique(name, p, listens, ["userID", "artistID"])
    interactions = pd.DataFrame(
        {
            "user_id": listens["userID"],
            "item_id": listens["artistID"],
            "weight": _numbers(name, p, listens["weight"]),
            "kind": "listen",
        }
    )

    p = folder / "artists.dat"
    artists = _ids(name, p, _read(name, p, ["id", "name", "url", "pictureURL"]), ["id"])
    _unique(name, p, artists, ["id"])
    title = artists["name"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": artists["id"],
            "title": title.mask(title == "", "artist " + artists["id"]),
            "url": _blank_to_na(artists["url"]),
            "picture_url": _blank_to_na(artists["pictureURL"]),
        }
    )

    p = folder / "user_friends.dat"
    friends = _ids(name, p, _read(name, p, ["userID", "friendID"]), ["userID", "friendID"])
    user_links = pd.DataFrame({"user_id": friends["userID"], "other_id": friends["friendID"]})

    p = folder / "tags.dat"
    tags = _ids(name, p, _read(name, p, ["tagID", "tagValue"], encoding="latin-1"), ["tagID"])
    _unique(name, p, tags, ["tagID"])
    tag_names = tags.set_index("tagID")["tagValue"].str.strip()

    p = folder / "user_taggedartists.dat"
    raw = _read(name, p, ["userID", "artistID", "tagID", "day", "month", "year"])
    raw = _ids(name, p, raw, ["userID", "artistID", "tagID"])
    assignments = pd.DataFrame({"user_id": raw["userID"], "item_id": raw["artistID"], "tag": raw["tagID"]})
    unknown_artist = ~assignments["item_id"].isin(items["item_id"])
    unknown_tag = ~assignments["tag"].isin(tag_names.index)
    log.info(
        "%s: excluded %d tag assignments on %d artists missing from artists.dat and %d on tag ids missing from "
        "tags.dat",
        name, int(unknown_artist.sum()), assignments.loc[unknown_artist, "item_id"].nunique(),
        int((unknown_tag & ~unknown_artist).sum()),
    )
    kept, dropped = _aggregate_tags(assignments[~unknown_artist & ~unknown_tag], min_taggers)
    log.info(
        "%s: %d (artist, tag) pairs have >= %d distinct taggers and became knowledge; %d pairs stayed behaviour",
        name, len(kept), min_taggers, dropped,
    )

    items["text"] = items["title"]
    tag_text = _tag_text(kept, tag_names)
    has_tags = items["item_id"].isin(tag_text.index)
    items.loc[has_tags, "text"] = items.loc[has_tags, "title"] + ". " + items.loc[has_tags, "item_id"].map(tag_text)
    items = _add_missing_items(name, items, interactions, "artist")

    item_entity = _item_entity(kept["item_id"], "tagged_as", "tag:" + kept["tag"])
    used = pd.Index(kept["tag"].unique())
    entities = pd.DataFrame({"entity_id": "tag:" + used, "name": tag_names.loc[used].to_numpy(), "type": "tag"})
    description = f"artist carries a tag applied by at least {min_taggers} distinct users"
    relations = pd.DataFrame({"relation": ["tagged_as"], "description": [description]})
    return Dataset(
        name=name,
        interactions=interactions,
        items=items,
        entities=entities,
        item_entity=item_entity,
        user_links=user_links,
        relations=relations,
    )


# --------------------------------------------------------------------------------------------------
# KGCN Last.FM (HetRec listening counts + Microsoft Satori KG)


def read_kgcn_lastfm(path: str | Path, *, names_from: str | Path | None = None) -> Dataset:
    """Last.FM with KGCN's Microsoft Satori knowledge graph (Wang et al., WWW 2019).

    ============================  ==================================================================
    file                          becomes
    ============================  ==================================================================
    ``item_index2entity_id.txt``  ``items``: the KG-linked artists (``artistID`` -> Satori entity id)
    ``user_artists.dat``          ``interactions`` on those artists only: ``weight`` = play count,
                                  ``kind`` = ``"listen"`` (KGCN treats every listen as a positive)
    ``kg.txt`` (CRLF)             ``item_entity``: one row per triple, ``relation`` as written,
                                  ``entity_id`` = ``satori:<tail>``; ``entities`` for the tails
    ============================  ==================================================================

    Every head of ``kg.txt`` is an item. A tail that is another item's Satori entity also becomes an
    entity (``name`` = that item's title, ``type`` = ``"artist"``), so every triple stays one row. Other
    tails are anonymous: ``name`` = ``satori:<id>`` and ``type`` = the last dotted segment of the relation
    it is most often the tail of (``music.artist.origin`` -> ``"origin"``). A triple whose head is not
    an item (none in the published file) would become an ``entity_entity`` row.

    The folder has no artist names. They come from HetRec's ``artists.dat`` (the same artist ids) when
    one is found, otherwise an item's title is ``"artist <id>"``; ``text`` is the title.

    Args:
        path: the folder holding ``user_artists.dat``, ``item_index2entity_id.txt`` and ``kg.txt``.
        names_from: HetRec's ``artists.dat``, or the folder holding it. ``None`` looks for the sibling
            folder ``../hetrec-lastfm-2k`` and goes without names when it is not there. (default: ``None``)
    """
    name = "kgcn-lastfm"
    folder = _folder(name, path, KGCN_FILES)

    p = folder / "item_index2entity_id.txt"
    links = _ids(name, p, _read(name, p, ["artist", "entity"], header=False), ["artist", "entity"])
    _unique(name, p, links, ["artist"])
    _unique(name, p, links, ["entity"])
    item_of_entity = links.set_index("entity")["artist"]

    p = folder / "user_artists.dat"
    listens = _ids(name, p, _read(name, p, ["userID", "artistID", "weight"]), ["userID", "artistID"])
    _unique(name, p, listens, ["userID", "artistID"])
    linked = listens["artistID"].isin(links["artist"])
    log.info("%s: kept %d of %d listening rows (on KG-linked artists)", name, int(linked.sum()), len(listens))
    listens = listens[linked]
    interactions = pd.DataFrame(
        {
            "user_id": listens["userID"],
            "item_id": listens["artistID"],
            "weight": _numbers(name, p, listens["weight"]),
            "kind": "listen",
        }
    ).reset_index(drop=True)

    titles = _artist_names(name, folder, names_from)
    title = links["artist"].map(titles)
    title = title.mask(title.isna() | (title == ""), "artist " + links["artist"])
    items = pd.DataFrame({"item_id": links["artist"], "title": title, "text": title})

    p = folder / "kg.txt"
    kg = _ids(name, p, _read(name, p, ["head", "relation", "tail"], header=False), ["head", "relation", "tail"])
    head_item = kg["head"].map(item_of_entity)
    tail_item = kg["tail"].map(item_of_entity)
    on_item = head_item.notna()
    item_entity = _item_entity(head_item[on_item], kg.loc[on_item, "relation"], "satori:" + kg.loc[on_item, "tail"])
    entity_entity = pd.DataFrame(
        {
            "head_id": "satori:" + kg.loc[~on_item, "head"],
            "relation": kg.loc[~on_item, "relation"],
            "tail_id": "satori:" + kg.loc[~on_item, "tail"],
        }
    ).reset_index(drop=True)
    log.info(
        "%s: %d triples -> %d item_entity rows (%d onto another item), %d entity_entity rows",
        name, len(kg), len(item_entity), int((on_item & tail_item.notna()).sum()), len(entity_entity),
    )

    anonymous = kg[tail_item.isna()]
    anonymous_type = _type_by_tail(anonymous, "tail", "relation")
    artist_tails = pd.Index(kg.loc[tail_item.notna(), "tail"].unique())
    titles_by_entity = items.set_index(links["entity"].to_numpy())["title"]
    artist_entities = pd.DataFrame(
        {"entity_id": "satori:" + artist_tails, "name": titles_by_entity.loc[artist_tails].to_numpy(), "type": "artist"}
    )
    ids = pd.Index(anonymous_type.index)
    other_entities = pd.DataFrame(
        {"entity_id": "satori:" + ids, "name": "satori:" + ids, "type": anonymous_type.to_numpy()}
    )
    # heads of entity_entity rows that are never a tail (none in the published file)
    heads = kg[~on_item & ~kg["head"].isin(ids) & ~kg["head"].isin(artist_tails)]
    head_type = _type_by_head(heads, "head", "relation")
    head_entities = pd.DataFrame(
        {"entity_id": "satori:" + head_type.index, "name": "satori:" + head_type.index, "type": head_type.to_numpy()}
    )
    entities = pd.concat([artist_entities, other_entities, head_entities], ignore_index=True)

    relations = _relations(kg["relation"], lambda r: f"Satori relation {r} (KGCN's Last.FM knowledge graph)")
    return Dataset(
        name=name,
        interactions=interactions,
        items=items,
        entities=entities,
        item_entity=item_entity,
        entity_entity=_or_none(entity_entity),
        relations=relations,
    )


def _artist_names(dataset: str, folder: Path, names_from: str | Path | None) -> pd.Series:
    """Artist names by id from HetRec's ``artists.dat`` (empty when none is named and no sibling has one)."""
    if names_from is None:
        candidate = folder.parent / "hetrec-lastfm-2k" / "artists.dat"
        if not candidate.is_file():
            log.info("%s: no %s; artists are titled 'artist <id>'", dataset, candidate)
            return pd.Series(dtype=str)
    else:
        candidate = Path(names_from).expanduser()
        if candidate.is_dir():
            candidate = candidate / "artists.dat"
        if not candidate.is_file():
            raise AdapterError(
                f"{dataset}: 'names_from' (got {str(names_from)!r}) is neither artists.dat nor a folder holding it"
            )
    artists = _ids(dataset, candidate, _read(dataset, candidate, ["id", "name", "url", "pictureURL"]), ["id"])
    log.info("%s: artist names from %s", dataset, candidate)
    return artists.drop_duplicates("id").set_index("id")["name"].str.strip()


# --------------------------------------------------------------------------------------------------
# MovieLens (ml-latest-small and other "latest" releases)


def read_movielens(path: str | Path, *, min_taggers: int = 2) -> Dataset:
    """MovieLens "latest" releases (``ml-latest-small``): ratings, movies, links, genres and user tags.

    ==================  ==========================================================================
    file                becomes
    ==================  ==========================================================================
    ``ratings.csv``     ``interactions``: ``rating`` (0.5-5 stars), ``timestamp`` (UTC),
                        ``kind`` = ``"rating"``, ``weight`` = 1.0
    ``movies.csv``      ``items``: ``title`` (with year); ``entities`` ``genre:<Genre>``
                        (``type`` ``"genre"``) and ``item_entity`` ``has_genre``
    ``links.csv``       item attributes ``imdb_id`` (as written, leading zeros kept) and
                        ``tmdb_id`` (missing for a few movies)
    ``tags.csv``        aggregated: ``entities`` ``tag:<tag>`` (``type`` ``"tag"``),
                        ``item_entity`` ``tagged_as`` and the items' ``text``
    ==================  ==========================================================================

    ``"(no genres listed)"`` is not a genre. Tags are compared lower-cased and stripped.

    Leakage guard: a tag becomes knowledge of a movie (a ``tagged_as`` row, and a word of its text)
    only when at least ``min_taggers`` distinct users applied it to that movie; the per-user tags
    are not loaded.

    An item's ``text``: ``"Toy Story (1995). Genres: Adventure, Animation, ... Tags: pixar"`` (the
    tags part only where some tag passed the guard, at most :data:`MAX_TEXT_TAGS`).

    Args:
        path: the folder holding ``ratings.csv``, ``movies.csv``, ``links.csv`` and ``tags.csv``.
        min_taggers: the least number of distinct users who must have applied a tag to a movie
            (at least 2). (default: ``2``)
    """
    name = "movielens"
    _check_min_taggers(min_taggers)
    folder = _folder(name, path, MOVIELENS_FILES)
    quoted = {"sep": ",", "quoting": csv.QUOTE_MINIMAL}

    p = folder / "ratings.csv"
    ratings = _read(name, p, ["userId", "movieId", "rating", "timestamp"], **quoted)
    ratings = _ids(name, p, ratings, ["userId", "movieId"])
    _unique(name, p, ratings, ["userId", "movieId"])
    interactions = pd.DataFrame(
        {
            "user_id": ratings["userId"],
            "item_id": ratings["movieId"],
            "rating": _numbers(name, p, ratings["rating"]),
            "weight": 1.0,
            "timestamp": _utc_seconds(name, p, ratings["timestamp"]),
            "kind": "rating",
        }
    )

    p = folder / "movies.csv"
    movies = _ids(name, p, _read(name, p, ["movieId", "title", "genres"], **quoted), ["movieId"])
    _unique(name, p, movies, ["movieId"])
    title = movies["title"].str.strip()
    title = title.mask(title == "", "movie " + movies["movieId"])
    items = pd.DataFrame({"item_id": movies["movieId"], "title": title})

    p = folder / "links.csv"
    links = _ids(name, p, _read(name, p, ["movieId", "imdbId", "tmdbId"], **quoted), ["movieId"])
    _unique(name, p, links, ["movieId"])
    links = links.set_index("movieId")
    items["imdb_id"] = _blank_to_na(items["item_id"].map(links["imdbId"]).fillna(""))
    items["tmdb_id"] = _blank_to_na(items["item_id"].map(links["tmdbId"]).fillna(""))

    genre_rows = pd.DataFrame({"item_id": movies["movieId"], "genre": movies["genres"].str.split("|")}).explode("genre")
    genre_rows["genre"] = genre_rows["genre"].str.strip()
    genre_rows = genre_rows[(genre_rows["genre"] != "") & (genre_rows["genre"] != "(no genres listed)")]
    genre_rows = genre_rows.drop_duplicates(ignore_index=True)
    genre_text = "Genres: " + genre_rows.groupby("item_id", sort=False)["genre"].agg(", ".join)

    p = folder / "tags.csv"
    raw = _ids(name, p, _read(name, p, ["userId", "movieId", "tag", "timestamp"], **quoted), ["userId", "movieId"])
    assignments = pd.DataFrame(
        {"user_id": raw["userId"], "item_id": raw["movieId"], "tag": raw["tag"].str.strip().str.lower()}
    )
    assignments = assignments[assignments["tag"] != ""]
    unknown = ~assignments["item_id"].isin(items["item_id"])
    log.info("%s: excluded %d tag applications on movies missing from movies.csv", name, int(unknown.sum()))
    kept, dropped = _aggregate_tags(assignments[~unknown], min_taggers)
    log.info(
        "%s: %d (movie, tag) pairs have >= %d distinct taggers and became knowledge; %d pairs stayed behaviour",
        name, len(kept), min_taggers, dropped,
    )
    tag_words = pd.Series(kept["tag"].unique(), index=kept["tag"].unique())
    tag_text = _tag_text(kept, tag_words)

    items["text"] = _join_parts(items["title"], items["item_id"].map(genre_text), items["item_id"].map(tag_text))
    items = _add_missing_items(name, items, interactions, "movie")

    item_entity = pd.concat(
        [
            _item_entity(genre_rows["item_id"], "has_genre", "genre:" + genre_rows["genre"]),
            _item_entity(kept["item_id"], "tagged_as", "tag:" + kept["tag"]),
        ],
        ignore_index=True,
    )
    genres = pd.Index(sorted(genre_rows["genre"].unique()))
    tag_ids = pd.Index(sorted(kept["tag"].unique()))
    entities = pd.concat(
        [
            pd.DataFrame({"entity_id": "genre:" + genres, "name": genres, "type": "genre"}),
            pd.DataFrame({"entity_id": "tag:" + tag_ids, "name": tag_ids, "type": "tag"}),
        ],
        ignore_index=True,
    )
    descriptions = {
        "has_genre": "the movie is listed under a MovieLens genre",
        "tagged_as": f"the movie carries a free-text tag applied by at least {min_taggers} distinct users",
    }
    relations = _relations(item_entity["relation"], descriptions.__getitem__)
    return Dataset(
        name=name,
        interactions=interactions,
        items=items,
        entities=entities,
        item_entity=item_entity,
        relations=relations,
    )


# --------------------------------------------------------------------------------------------------
# RecBole atomic files (ml-100k with Freebase KG)


def read_recbole(path: str | Path, *, stem: str | None = None) -> Dataset:
    """RecBole atomic files with a knowledge graph: ``<stem>.{inter,item,kg,link}`` (``ml-100k``).

    Headers are typed (``user_id:token``); the ``:type`` suffixes are stripped.

    ================  ============================================================================
    file              becomes
    ================  ============================================================================
    ``.inter``        ``interactions``: ``rating``, ``timestamp`` (UTC, from Unix seconds),
                      ``kind`` = ``"rating"``, ``weight`` = 1.0
    ``.item``         ``items``: ``title`` = ``movie_title``, attribute ``release_year``
                      (nullable integer: ``"unkonwn"`` and ``"V"`` occur), ``text`` =
                      ``"Toy Story (1995). Genres: Animation, Children's, Comedy"`` from ``class``
    ``.link``         item id -> Freebase MID
    ``.kg``           one row per triple (``fb:<mid>`` entities), see below
    ``.user``         not read: the demographics (age, gender, occupation, zip code) are not used
    ================  ============================================================================

    Triples by where the item is:

    - item head, non-item tail -> ``item_entity(item, relation, fb:<tail>)``;
    - non-item head, item tail (the inverse relations, e.g. ``film.producer.film``) ->
      ``item_entity(tail item, "inverse:" + relation, fb:<head>)``;
    - item head, item tail (sequels, prequels) -> ``item_entity(head item, relation, fb:<tail>)``, and
      the tail's MID is also an entity (``name`` = that item's title, ``type`` = ``"film"``);
    - neither -> ``entity_entity(fb:<head>, relation, fb:<tail>)``.

    Other entities are named by their MID (the KG has no labels); their ``type`` is the last dotted
    segment of the relation they are most often the tail of (``film.film.genre`` -> ``"genre"``), or,
    for an entity that is never a tail, the middle segment of a relation it heads
    (``film.producer.film`` -> ``"producer"``).

    Args:
        path: the folder holding the atomic files.
        stem: the files' common name (``ml-100k``). ``None`` takes the stem of the folder's one
            ``.inter`` file. (default: ``None``)
    """
    name = "recbole"
    folder = Path(path).expanduser()
    if stem is None:
        inter_files = sorted(folder.glob("*.inter")) if folder.is_dir() else []
        if len(inter_files) > 1:
            raise AdapterError(
                f"{name}: {folder} holds {len(inter_files)} .inter files ({', '.join(f.name for f in inter_files)}); "
                "pass 'stem' to choose one"
            )
        stem = inter_files[0].stem if inter_files else "ml-100k"
    folder = _folder(name, folder, [stem + suffix for suffix in RECBOLE_SUFFIXES])
    name = f"recbole-{stem}"

    p = folder / f"{stem}.inter"
    inter = _ids(name, p, _read(name, p, ["user_id", "item_id", "rating", "timestamp"]), ["user_id", "item_id"])
    _unique(name, p, inter, ["user_id", "item_id"])
    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "rating": _numbers(name, p, inter["rating"]),
            "weight": 1.0,
            "timestamp": _utc_seconds(name, p, inter["timestamp"]),
            "kind": "rating",
        }
    )

    p = folder / f"{stem}.item"
    raw = _ids(name, p, _read(name, p, ["item_id", "movie_title", "release_year", "class"]), ["item_id"])
    _unique(name, p, raw, ["item_id"])
    title = raw["movie_title"].str.strip()
    title = title.mask(title == "", "movie " + raw["item_id"])
    year = raw["release_year"].str.strip()
    year = pd.to_numeric(year.where(year.str.fullmatch(r"\d{4}")), errors="coerce").astype("Int64")
    tokens = raw["class"].str.split().explode()
    tokens = tokens[tokens.notna() & (tokens != "unknown")]
    genres = "Genres: " + tokens.groupby(level=0, sort=False).agg(", ".join)
    with_year = title.where(year.isna(), title + " (" + year.astype(str) + ")")
    text = _join_parts(with_year, genres.reindex(raw.index))
    items = pd.DataFrame({"item_id": raw["item_id"], "title": title, "text": text, "release_year": year})
    items = _add_missing_items(name, items, interactions, "movie")

    p = folder / f"{stem}.link"
    link = _ids(name, p, _read(name, p, ["item_id", "entity_id"]), ["item_id", "entity_id"])
    _unique(name, p, link, ["item_id"])
    _unique(name, p, link, ["entity_id"])
    item_of_mid = link.set_index("entity_id")["item_id"]

    p = folder / f"{stem}.kg"
    kg = _ids(name, p, _read(name, p, ["head_id", "relation_id", "tail_id"]), ["head_id", "relation_id", "tail_id"])
    head_item = kg["head_id"].map(item_of_mid)
    tail_item = kg["tail_id"].map(item_of_mid)
    forward = head_item.notna()
    inverse = head_item.isna() & tail_item.notna()
    neither = head_item.isna() & tail_item.isna()
    on_item = forward | inverse  # file order kept
    item_entity = _item_entity(
        head_item.where(forward, tail_item)[on_item],
        kg["relation_id"].where(forward, "inverse:" + kg["relation_id"])[on_item],
        "fb:" + kg["tail_id"].where(forward, kg["head_id"])[on_item],
    )
    entity_entity = pd.DataFrame(
        {
            "head_id": "fb:" + kg.loc[neither, "head_id"],
            "relation": kg.loc[neither, "relation_id"],
            "tail_id": "fb:" + kg.loc[neither, "tail_id"],
        }
    ).reset_index(drop=True)
    log.info(
        "%s: %d triples -> %d item->entity, %d inverse (entity->item), %d item->item, %d entity_entity rows",
        name, len(kg), int((forward & tail_item.isna()).sum()), int(inverse.sum()),
        int((forward & tail_item.notna()).sum()), int(neither.sum()),
    )

    film_mids = pd.Index(kg.loc[forward & tail_item.notna(), "tail_id"].unique())
    film_titles = film_mids.map(item_of_mid).map(items.set_index("item_id")["title"])
    film_entities = pd.DataFrame({"entity_id": "fb:" + film_mids, "name": film_titles, "type": "film"})
    as_tail = kg[tail_item.isna()]
    tail_type = _type_by_tail(as_tail, "tail_id", "relation_id")
    heads = kg[head_item.isna() & ~kg["head_id"].isin(tail_type.index)]
    head_type = _type_by_head(heads, "head_id", "relation_id")
    other = pd.concat([tail_type, head_type])
    other_entities = pd.DataFrame({"entity_id": "fb:" + other.index, "name": other.index, "type": other.to_numpy()})
    entities = pd.concat([film_entities, other_entities], ignore_index=True)

    def describe(relation: str) -> str:
        if relation.startswith("inverse:"):
            base = relation.removeprefix("inverse:")
            return f"inverse of Freebase relation {base}: the entity is its subject, the item its object"
        return f"Freebase relation {relation}"

    relations = _relations(pd.concat([item_entity["relation"], entity_entity["relation"]]), describe)
    return Dataset(
        name=name,
        interactions=interactions,
        items=items,
        entities=entities,
        item_entity=item_entity,
        entity_entity=_or_none(entity_entity),
        relations=relations,
    )


ADAPTERS: dict[str, Callable[[Path], Dataset]] = {
    "hetrec-lastfm": read_hetrec_lastfm,
    "kgcn-lastfm": read_kgcn_lastfm,
    "movielens": read_movielens,
    "recbole": read_recbole,
}
"""Each adapter by the key that ``kgrec load <key> PATH`` takes."""
