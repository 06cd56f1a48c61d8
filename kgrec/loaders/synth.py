"""Synthetic datasets with planted structure: demos and scale tests that need no download.

:func:`make_synthetic` builds a :class:`~kgrec.loaders.dataset.Dataset` (name ``"synthetic"``) in the generic
format from a :class:`SynthConfig`; :func:`write_dataset` writes any dataset as one file per table.

Why planted structure
---------------------
A random bipartite graph is useless for a recommender demo: no model can beat popularity on it, so a
demo proves nothing and a regression that breaks the knowledge or text path goes unnoticed. Here a
few latent *topics* (tastes) drive every table, each through its own noisy channel, so that a model that
reads text and knowledge has more to go on than one that sees only the interactions — especially for
items with few interactions:

- **Topics.** Each topic has a fixed vocabulary of 12 descriptive words (``jazz``: ``saxophone``,
  ``trumpet``, ``swing``, …; see :func:`topic_vocabulary`) and a set of entities (``genre``, ``tag`` and
  ``person``), each entity belonging to one topic. Topics differ in their numbers of items and users.
- **Items.** Each item has a main topic and, for about 30 % of items, a secondary one. Its title is two of
  its main topic's words (plus, half the time, a shared title word such as ``Sessions``); its text is 10–16
  words: ~55 % main-topic words, ~15 % secondary-topic words (main-topic ones when there is none) and
  ~30 % :data:`FILLER_WORDS` shared by all topics. Text similarity therefore correlates with topic.
- **Knowledge.** Each item links to ``entity_links_per_item`` distinct entities: ~80 % from its main
  topic, ~10 % from its secondary topic (or a random one), ~10 % from a random topic, with a Zipf
  popularity within each topic. The relation follows the entity's type: ``has_genre``, ``tagged_as``,
  ``features``. Entity→entity links (``related_to``) stay within the head's topic 90 % of the time.
- **Users.** Each user has a main topic (drawn by topic size) and, half the time, a secondary one with
  15–40 % of the weight. Activity is heavy-tailed (log-normal), at least 2 and at most
  ``max(2, items // 2)`` interactions per user, and the counts add up to ``interactions`` exactly.
- **Interactions.** Each interaction picks a topic from the user's taste (10 % noise: a uniformly random
  topic), then an item of that topic by a Zipf popularity (exponent 0.8, popularity order random with
  respect to ids); (user, item) pairs are distinct (a heavy user who has exhausted their topics gets
  uniform picks). Ratings (1–5 in steps of 0.5) average ~4.1 on the user's main topic, ~3.6 on the
  secondary, ~3.2 on items whose secondary topic is the user's main one, ~2.6 elsewhere, plus user and
  item biases and noise. Timestamps (UTC) fall in 2023, inside a per-user window of activity, so a
  temporal split is meaningful; rows are sorted by user, then time.
- **Follows.** Each user follows ``follows_per_user`` distinct others: 80 % of the time a user with the
  same main topic (Zipf within the topic, so some users are "influencers"), otherwise anyone.

The topics themselves are not in the dataset (that would hand a model the answer); they are recoverable
from the planted signals, which is what the tests measure: an item's topic is the dominant topic of its
entities (an entity's topic is readable from its text), and a user's items concentrate on one topic.

Generation is vectorised (no Python loop per interaction): distinct pairs are drawn in oversampled rounds
and deduplicated with :func:`numpy.unique`. Every component draws from its own random stream spawned from
``seed``, so the same config gives identical frames, and switching ratings, timestamps or follows on or
off leaves the other tables, and the set of (user, item) pairs, unchanged. Three million interactions take a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import KgrecError
from kgrec.loaders.dataset import Dataset

#: Hand-written topics: (name, 12 descriptive words). More topics get generated pseudo-words.
_NAMED_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jazz", ("saxophone", "trumpet", "swing", "bebop", "improvisation", "trio",
              "ballad", "smoky", "nightclub", "brass", "groove", "standards")),
    ("space", ("galaxy", "rocket", "astronaut", "orbit", "nebula", "planet",
               "starship", "cosmic", "alien", "telescope", "asteroid", "lunar")),
    ("cooking", ("recipe", "kitchen", "spice", "baking", "flavor", "chef",
                 "garlic", "pastry", "roast", "simmer", "herbs", "feast")),
    ("football", ("goal", "striker", "stadium", "league", "penalty", "midfield",
                  "keeper", "derby", "tackle", "referee", "season", "trophy")),
    ("mystery", ("detective", "murder", "clue", "suspect", "alibi", "inspector",
                 "crime", "poison", "secret", "witness", "manor", "riddle")),
    ("romance", ("love", "wedding", "heart", "kiss", "passion", "longing",
                 "sweetheart", "courtship", "destiny", "embrace", "letters", "paris")),
    ("gardening", ("soil", "bloom", "seeds", "compost", "roses", "orchard",
                   "pruning", "greenhouse", "tulip", "harvest", "hedge", "meadow")),
    ("history", ("empire", "dynasty", "medieval", "castle", "revolution", "archive",
                 "ancient", "pharaoh", "battle", "monarch", "treaty", "chronicle")),
    ("programming", ("algorithm", "compiler", "python", "database", "kernel", "debugging",
                     "software", "syntax", "server", "binary", "function", "network")),
    ("horror", ("ghost", "haunted", "vampire", "zombie", "nightmare", "curse",
                "graveyard", "blood", "shadow", "demon", "scream", "crypt")),
    ("travel", ("journey", "passport", "island", "backpacking", "voyage", "harbor",
                "desert", "mountain", "hostel", "itinerary", "safari", "cruise")),
    ("fitness", ("workout", "muscle", "cardio", "yoga", "marathon", "protein",
                 "stretching", "endurance", "gym", "sprint", "training", "wellness")),
)
WORDS_PER_TOPIC = 12

#: Words shared by every topic's item texts (they carry no topic signal).
FILLER_WORDS: tuple[str, ...] = (
    "new", "classic", "collection", "story", "edition", "selected", "great", "complete",
    "original", "special", "popular", "modern", "essential", "volume", "guide", "notes",
)
_TITLE_WORDS = ("Sessions", "Chronicles", "Stories", "Notes", "Guide", "Collection", "Volume", "Tales")
_FIRST_NAMES = ("Ada", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
                "Kira", "Luca", "Maya", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
                "Umar", "Vera", "Wen", "Yusuf")
_LAST_NAMES = ("Abbott", "Brandt", "Castillo", "Duarte", "Eriksen", "Fischer", "Gallo", "Haddad",
               "Ito", "Jensen", "Kowalski", "Laurent", "Moreau", "Novak", "Okafor", "Petrov",
               "Quintero", "Rossi", "Silva", "Tanaka", "Usman", "Varga", "Weber", "Zhou")

#: Entity types, their share of a topic's entities (the first of each topic is a genre), and the
#: item→entity relation each type gets.
ENTITY_TYPES: tuple[str, ...] = ("genre", "tag", "person")
_TYPE_SHARES = (0.1, 0.5, 0.4)
RELATION_OF_TYPE: dict[str, str] = {"genre": "has_genre", "tag": "tagged_as", "person": "features"}
ENTITY_RELATION = "related_to"
RELATION_DESCRIPTIONS: dict[str, str] = {
    "has_genre": "the item belongs to the genre",
    "tagged_as": "the item is described by the tag",
    "features": "the item features the person",
    "related_to": "the two entities are related",
}

_EPOCH_S = int(pd.Timestamp("2023-01-01", tz="UTC").timestamp())
_YEAR_S = 365 * 24 * 3600

# Planted-structure knobs (documented in the module docstring).
_ITEM_SECOND_P = 0.3
_USER_SECOND_P = 0.5
_NOISE = 0.1
_LINK_MAIN_P, _LINK_SECOND_P = 0.8, 0.1
_ENTITY_SAME_TOPIC_P = 0.9
_FOLLOW_SAME_TOPIC_P = 0.8
_ITEM_ZIPF, _ENTITY_ZIPF, _USER_ZIPF = 0.8, 0.6, 0.8
_STREAMS = ("topics", "items", "entities", "users", "item_entity", "entity_entity",
            "interactions", "ratings", "timestamps", "follows")


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and switches of a synthetic dataset.

    Args:
        users: number of users (each gets at least 2 interactions). (default: ``1000``)
        items: number of items, at least ``topics`` and 2. (default: ``500``)
        entities: number of knowledge entities (genres, tags, people), at least ``topics``. (default: ``100``)
        interactions: total number of distinct (user, item) interactions; between ``2 * users`` and
            ``users * max(2, items // 2)``. (default: ``20000``)
        topics: number of latent tastes. (default: ``8``)
        entity_links_per_item: distinct item→entity links per item; 0 leaves out ``item_entity``.
            (default: ``3``)
        entity_entity_links: total distinct entity→entity links; 0 leaves out ``entity_entity``.
            (default: ``200``)
        follows_per_user: distinct users each user follows; 0 leaves out ``user_links``. (default: ``3``)
        seed: seed of every random stream. (default: ``0``)
        with_ratings: add a ``rating`` column to interactions. (default: ``True``)
        with_timestamps: add a UTC ``timestamp`` column to interactions. (default: ``True``)

    Raises:
        ValueError: a value out of range, named with the value it got.
    """

    users: int = 1000
    items: int = 500
    entities: int = 100
    interactions: int = 20000
    topics: int = 8
    entity_links_per_item: int = 3
    entity_entity_links: int = 200
    follows_per_user: int = 3
    seed: int = 0
    with_ratings: bool = True
    with_timestamps: bool = True

    def __post_init__(self) -> None:
        minimums = {"users": 1, "items": 2, "entities": 1, "interactions": 2, "topics": 1,
                    "entity_links_per_item": 0, "entity_entity_links": 0, "follows_per_user": 0, "seed": 0}
        for name, low in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"'{name}' (got {value!r}) must be an integer")
            if value < low:
                raise ValueError(f"'{name}' (got {value}) must be >= {low}")
        for name in ("with_ratings", "with_timestamps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"'{name}' (got {getattr(self, name)!r}) must be True or False")
        if self.topics > self.items:
            raise ValueError(f"'topics' (got {self.topics}) must be <= 'items' (got {self.items}): "
                             "every topic needs an item")
        if self.topics > self.entities:
            raise ValueError(f"'topics' (got {self.topics}) must be <= 'entities' (got {self.entities}): "
                             "every topic needs an entity")
        if self.entity_links_per_item > self.entities:
            raise ValueError(f"'entity_links_per_item' (got {self.entity_links_per_item}) must be <= "
                             f"'entities' (got {self.entities})")
        if self.entity_entity_links > self.entities * (self.entities - 1):
            raise ValueError(f"'entity_entity_links' (got {self.entity_entity_links}) must be <= "
                             f"entities * (entities - 1) (got {self.entities * (self.entities - 1)})")
        if self.follows_per_user > self.users - 1:
            raise ValueError(f"'follows_per_user' (got {self.follows_per_user}) must be <= users - 1 "
                             f"(got {self.users - 1})")
        if self.interactions < 2 * self.users:
            raise ValueError(f"'interactions' (got {self.interactions}) must be >= 2 * users "
                             f"(got {2 * self.users}): every user has at least two")
        most = self.users * self.max_interactions_per_user
        if self.interactions > most:
            raise ValueError(f"'interactions' (got {self.interactions}) must be <= users * max(2, items // 2) "
                             f"(got {most})")

    @property
    def max_interactions_per_user(self) -> int:
        """The most interactions one user gets: half the catalogue (but at least 2)."""
        return max(2, self.items // 2)


@lru_cache(maxsize=8)
def topic_vocabulary(n_topics: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The (name, words) of each of ``n_topics`` topics; the same for every seed.

    The first 12 topics are hand-written English (``jazz``, ``space``, ``cooking``, …); further ones get
    pronounceable pseudo-words from a fixed generator. All words of all topics are distinct, and none is
    a :data:`FILLER_WORDS` word.
    """
    topics = list(_NAMED_TOPICS[:n_topics])
    used = {w for name, words in _NAMED_TOPICS for w in (name, *words)} | set(FILLER_WORDS)
    gen = np.random.default_rng(20230101)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    while len(topics) < n_topics:
        fresh: list[str] = []
        while len(fresh) < WORDS_PER_TOPIC + 1:
            word = "".join(consonants[gen.integers(len(consonants))] + vowels[gen.integers(len(vowels))]
                           for _ in range(int(gen.integers(2, 4))))
            if word not in used:
                used.add(word)
                fresh.append(word)
        topics.append((fresh[0], tuple(fresh[1:])))
    return tuple(topics)


def make_synthetic(config: SynthConfig | None = None) -> Dataset:
    """A synthetic :class:`Dataset` named ``"synthetic"`` with planted topics (see the module docstring).

    Ids are ``u<n>``, ``i<n>`` and ``e<n>``. ``len(dataset.interactions)`` equals ``config.interactions``.
    """
    config = config or SynthConfig()
    rng = {name: np.random.default_rng(s)
           for name, s in zip(_STREAMS, np.random.SeedSequence(config.seed).spawn(len(_STREAMS)))}
    vocab = topic_vocabulary(config.topics)
    plan = _plan(config, rng)
    item_ids = _ids("i", config.items)
    entity_ids = _ids("e", config.entities)
    user_ids = _ids("u", config.users)

    items = _items_frame(plan, vocab, item_ids, rng["items"])
    entities = _entities_frame(plan, vocab, entity_ids, rng["entities"])
    item_entity = _item_entity_frame(config, plan, item_ids, entity_ids, rng["item_entity"])
    entity_entity = _entity_entity_frame(config, plan, entity_ids, rng["entity_entity"])
    interactions = _interactions_frame(config, plan, user_ids, item_ids, rng)
    user_links = _user_links_frame(config, plan, user_ids, rng["follows"])
    used: list[str] = []
    if item_entity is not None:
        used += [r for r in RELATION_DESCRIPTIONS if r in set(item_entity["relation"].unique())]
    if entity_entity is not None:
        used.append(ENTITY_RELATION)
    relations = (pd.DataFrame({"relation": used, "description": [RELATION_DESCRIPTIONS[r] for r in used]})
                 if used else None)
    return Dataset(name="synthetic", interactions=interactions, items=items, entities=entities,
                   item_entity=item_entity, entity_entity=entity_entity, user_links=user_links,
                   relations=relations)


# ---------------------------------------------------------------------------------------------------------
# The latent plan: topics of items, entities and users, and popularity pools.


@dataclass
class _Plan:
    item_topic: np.ndarray  # (items,) main topic
    item_second: np.ndarray  # (items,) secondary topic or -1
    entity_topic: np.ndarray  # (entities,)
    entity_type: np.ndarray  # (entities,) index into ENTITY_TYPES
    user_main: np.ndarray  # (users,)
    user_second: np.ndarray  # (users,) secondary topic or -1
    user_main_weight: np.ndarray  # (users,) share of the main topic among non-noise picks
    item_pool: _TopicPool
    entity_pool: _TopicPool
    user_pool: _TopicPool
    n_topics: int


class _TopicPool:
    """Members grouped by topic, each group in a random popularity order with Zipf weights ``rank^-alpha``.

    :meth:`sample` draws one member of each given topic by inverse CDF: the cumulative weights of group
    ``t`` are stored as ``t + cdf`` in one sorted array, so one :func:`numpy.searchsorted` serves all topics.
    """

    def __init__(self, topic_of: np.ndarray, n_topics: int, alpha: float, rng: np.random.Generator) -> None:
        perm = rng.permutation(topic_of.size)
        self.members = perm[np.argsort(topic_of[perm], kind="stable")]
        self.sizes = np.bincount(topic_of, minlength=n_topics)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)))
        group = topic_of[self.members]
        rank = np.arange(topic_of.size) - self.starts[group]
        cum = np.cumsum((rank + 1.0) ** -alpha)
        within = cum - np.concatenate(([0.0], cum))[self.starts[group]]
        self.keys = group + within / within[self.starts[group + 1] - 1]  # group t: (t, t + 1]

    def sample(self, topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = np.searchsorted(self.keys, topics + rng.random(topics.size), side="right")
        idx = np.minimum(idx, self.starts[topics + 1] - 1)
        empty = self.sizes[topics] == 0
        if empty.any():
            idx[empty] = rng.integers(0, self.members.size, int(empty.sum()))
        return self.members[idx]


def _plan(config: SynthConfig, rng: dict[str, np.random.Generator]) -> _Plan:
    gen = rng["topics"]
    n_topics = config.topics
    topic_weight = gen.uniform(0.5, 1.5, n_topics)
    topic_weight /= topic_weight.sum()
    item_topic = _cover_topics(config.items, topic_weight, gen)
    entity_topic = _cover_topics(config.entities, np.full(n_topics, 1.0 / n_topics), gen)
    item_second = _second_topic(item_topic, _ITEM_SECOND_P, n_topics, gen)

    # one random entity of each topic is a genre; the rest by _TYPE_SHARES
    entity_type = gen.choice(len(ENTITY_TYPES), size=config.entities, p=_TYPE_SHARES)
    shuffled = gen.permutation(config.entities)
    _, first_of_topic = np.unique(entity_topic[shuffled], return_index=True)
    entity_type[shuffled[first_of_topic]] = ENTITY_TYPES.index("genre")

    users = rng["users"]
    user_main = users.choice(n_topics, size=config.users, p=topic_weight)
    user_second = _second_topic(user_main, _USER_SECOND_P, n_topics, users)
    user_main_weight = np.where(user_second >= 0, users.uniform(0.6, 0.85, config.users), 1.0)
    return _Plan(
        item_topic=item_topic, item_second=item_second, entity_topic=entity_topic, entity_type=entity_type,
        user_main=user_main, user_second=user_second, user_main_weight=user_main_weight,
        item_pool=_TopicPool(item_topic, n_topics, _ITEM_ZIPF, gen),
        entity_pool=_TopicPool(entity_topic, n_topics, _ENTITY_ZIPF, gen),
        user_pool=_TopicPool(user_main, n_topics, _USER_ZIPF, users),
        n_topics=n_topics,
    )


def _cover_topics(n: int, weight: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """``n >= len(weight)`` topic labels in random order: each topic once, the rest drawn by ``weight``."""
    labels = np.concatenate((np.arange(weight.size), gen.choice(weight.size, size=n - weight.size, p=weight)))
    return gen.permutation(labels)


def _second_topic(main: np.ndarray, p: float, n_topics: int, gen: np.random.Generator) -> np.ndarray:
    """A topic other than ``main`` with probability ``p``, else -1."""
    if n_topics == 1:
        return np.full(main.size, -1)
    other = (main + gen.integers(1, n_topics, main.size)) % n_topics
    return np.where(gen.random(main.size) < p, other, -1)


# ---------------------------------------------------------------------------------------------------------
# Vectorised sampling of distinct pairs.


def _allocate(total: int, weight: np.ndarray, low: int, cap: int, gen: np.random.Generator) -> np.ndarray:
    """Counts per row, each in ``[low, cap]``, adding up to ``total``, otherwise proportional to ``weight``."""
    p = weight / weight.sum()
    counts = low + gen.multinomial(total - low * weight.size, p)
    while (over := counts > cap).any():
        excess = int((counts[over] - cap).sum())
        counts[over] = cap
        room = np.flatnonzero(counts < cap)
        counts[room] += gen.multinomial(excess, p[room] / p[room].sum())
    return counts


def _sample_distinct(
    counts: np.ndarray,
    n_cols: int,
    draw: Callable[[np.ndarray], np.ndarray],
    gen: np.random.Generator,
    *,
    forbid_self: bool = False,
    structured_rounds: int = 6,
    max_rounds: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(row, col)`` pairs, exactly ``counts[row]`` per row, cols drawn by ``draw(rows)``.

    Each round draws an oversampled batch for the rows still short, deduplicates it together with the
    pairs kept so far (earlier draws win), and keeps the first ``counts[row]`` distinct pairs of each row —
    the same as drawing without replacement. After ``structured_rounds`` rounds, draws are uniform (a
    row whose structured choices are exhausted still fills up); rows still short after ``max_rounds``
    (only near saturation) are filled from their unused columns. Requires
    ``counts <= n_cols - forbid_self``.
    """
    n_rows = counts.size
    need = counts.astype(np.int64)
    done_rows: list[np.ndarray] = []
    done_cols: list[np.ndarray] = []
    rows_kept = np.empty(0, np.int64)
    cols_kept = np.empty(0, np.int64)
    for round_ in range(max_rounds):
        todo = np.flatnonzero(need > 0)
        if todo.size == 0:
            break
        want = need[todo]
        per_row = want + (want >> 2) + 1 if round_ == 0 else 2 * want + 2
        rows = np.repeat(todo, per_row)
        cols = draw(rows) if round_ < structured_rounds else gen.integers(0, n_cols, rows.size)
        if forbid_self:
            rows, cols = rows[rows != cols], cols[rows != cols]
        rows = np.concatenate((rows_kept, rows))
        cols = np.concatenate((cols_kept, cols))
        _, first = np.unique(rows * n_cols + cols, return_index=True)
        first.sort()  # keep draw order: earlier pairs first
        rows, cols = rows[first], cols[first]
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        starts = np.flatnonzero(np.diff(sorted_rows, prepend=-1))  # first index of each row's run
        rank = np.arange(sorted_rows.size) - np.repeat(starts, np.diff(starts, append=sorted_rows.size))
        keep = np.sort(order[rank < counts[sorted_rows]])
        rows, cols = rows[keep], cols[keep]
        need[todo] = counts[todo] - np.bincount(rows, minlength=n_rows)[todo]
        full = need[rows] == 0
        done_rows.append(rows[full])
        done_cols.append(cols[full])
        rows_kept, cols_kept = rows[~full], cols[~full]
    for row in np.flatnonzero(need > 0):  # saturated rows only
        taken = np.concatenate((cols_kept[rows_kept == row], [row] if forbid_self else []))
        free = np.setdiff1d(np.arange(n_cols), taken.astype(np.int64))
        done_rows.append(np.full(need[row], row))
        done_cols.append(gen.choice(free, size=need[row], replace=False))
    done_rows.append(rows_kept)
    done_cols.append(cols_kept)
    return np.concatenate(done_rows).astype(np.int64), np.concatenate(done_cols).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# Tables.


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def _items_frame(plan: _Plan, vocab: tuple[tuple[str, tuple[str, ...]], ...], item_ids: np.ndarray,
                 gen: np.random.Generator) -> pd.DataFrame:
    n = item_ids.size
    words = np.array([w for _, ws in vocab for w in ws], dtype=object).reshape(len(vocab), WORDS_PER_TOPIC)
    main = plan.item_topic
    second = np.where(plan.item_second >= 0, plan.item_second, main)

    first = gen.integers(0, WORDS_PER_TOPIC, n)
    other = (first + gen.integers(1, WORDS_PER_TOPIC, n)) % WORDS_PER_TOPIC
    suffix = np.array(_TITLE_WORDS, dtype=object)[gen.integers(0, len(_TITLE_WORDS), n)]
    with_suffix = gen.random(n) < 0.5
    titles = [f"{a.capitalize()} {b.capitalize()}" + (f" {s}" if w else "")
              for a, b, s, w in zip(words[main, first], words[main, other], suffix, with_suffix.tolist())]

    max_len = 16
    lengths = gen.integers(10, max_len + 1, n)
    source = gen.random((n, max_len))  # < .15 secondary topic, < .70 main topic, else filler
    topic = np.where(source < 0.15, second[:, None], main[:, None])
    text_words = words[topic, gen.integers(0, WORDS_PER_TOPIC, (n, max_len))]
    filler = source >= 0.7
    fillers = np.array(FILLER_WORDS, dtype=object)
    text_words[filler] = fillers[gen.integers(0, fillers.size, int(filler.sum()))]
    texts = [" ".join(row[:k]) for row, k in zip(text_words.tolist(), lengths.tolist())]
    return pd.DataFrame({"item_id": item_ids, "title": titles, "text": texts})


def _entities_frame(plan: _Plan, vocab: tuple[tuple[str, tuple[str, ...]], ...], entity_ids: np.ndarray,
                    gen: np.random.Generator) -> pd.DataFrame:
    names: list[str] = []
    texts: list[str] = []
    seen: dict[tuple[int, int], int] = {}  # (topic, type) → how many so far
    picks = gen.integers(0, WORDS_PER_TOPIC, (entity_ids.size, 3))
    people = gen.integers(0, len(_FIRST_NAMES) * len(_LAST_NAMES) * 26, entity_ids.size)
    for e, (topic, kind) in enumerate(zip(plan.entity_topic.tolist(), plan.entity_type.tolist())):
        topic_name, words = vocab[topic]
        k = seen.get((topic, kind), 0)
        seen[(topic, kind)] = k + 1
        type_name = ENTITY_TYPES[kind]
        if type_name == "genre":
            rep, j = divmod(k - 1, WORDS_PER_TOPIC)
            name = topic_name if k == 0 else f"{words[j]} {topic_name}" + (f" {rep + 1}" if rep else "")
        elif type_name == "tag":
            name = words[k] if k < WORDS_PER_TOPIC else _word_pair(words, k - WORDS_PER_TOPIC)
        else:
            first, rest = divmod(people[e], len(_LAST_NAMES) * 26)
            last, initial = divmod(rest, 26)
            name = f"{_FIRST_NAMES[first]} {chr(65 + initial)}. {_LAST_NAMES[last]}"
        offsets = (0, 1 + picks[e, 1] % 5, 6 + picks[e, 2] % 5)  # three distinct words
        a, b, c = (words[(picks[e, 0] + j) % WORDS_PER_TOPIC] for j in offsets)
        names.append(name)
        texts.append(f"A {type_name} associated with {a}, {b} and {c}.")
    return pd.DataFrame({"entity_id": entity_ids, "name": names,
                         "type": np.array(ENTITY_TYPES, dtype=object)[plan.entity_type], "text": texts})


def _word_pair(words: tuple[str, ...], j: int) -> str:
    """The ``j``-th distinct two-word name from ``words`` (numbered once the pairs run out)."""
    pairs = WORDS_PER_TOPIC * (WORDS_PER_TOPIC - 1)
    rep, j = divmod(j, pairs)
    a = j % WORDS_PER_TOPIC
    b = (a + 1 + j // WORDS_PER_TOPIC) % WORDS_PER_TOPIC
    return f"{words[a]} {words[b]}" + (f" {rep + 1}" if rep else "")


def _random_topic(n: int, n_topics: int, gen: np.random.Generator) -> np.ndarray:
    return gen.integers(0, n_topics, n)


def _item_entity_frame(config: SynthConfig, plan: _Plan, item_ids: np.ndarray, entity_ids: np.ndarray,
                       gen: np.random.Generator) -> pd.DataFrame | None:
    if config.entity_links_per_item == 0:
        return None

    def draw(rows: np.ndarray) -> np.ndarray:
        u = gen.random(rows.size)
        second = plan.item_second[rows]
        topic = np.where(second >= 0, second, _random_topic(rows.size, plan.n_topics, gen))
        topic = np.where(u < _LINK_MAIN_P, plan.item_topic[rows], topic)
        topic = np.where(u >= _LINK_MAIN_P + _LINK_SECOND_P, _random_topic(rows.size, plan.n_topics, gen), topic)
        return plan.entity_pool.sample(topic, gen)

    counts = np.full(config.items, config.entity_links_per_item)
    rows, cols = _sample_distinct(counts, config.entities, draw, gen)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    relation = np.array([RELATION_OF_TYPE[t] for t in ENTITY_TYPES], dtype=object)[plan.entity_type[cols]]
    return pd.DataFrame({"item_id": item_ids[rows], "relation": relation, "entity_id": entity_ids[cols]})


def _entity_entity_frame(config: SynthConfig, plan: _Plan, entity_ids: np.ndarray,
                         gen: np.random.Generator) -> pd.DataFrame | None:
    if config.entity_entity_links == 0:
        return None

    def draw(rows: np.ndarray) -> np.ndarray:
        same = gen.random(rows.size) < _ENTITY_SAME_TOPIC_P
        topic = np.where(same, plan.entity_topic[rows], _random_topic(rows.size, plan.n_topics, gen))
        return plan.entity_pool.sample(topic, gen)

    counts = _allocate(config.entity_entity_links, np.ones(config.entities), 0, config.entities - 1, gen)
    rows, cols = _sample_distinct(counts, config.entities, draw, gen, forbid_self=True)
    order = np.lexsort((cols, rows))
    return pd.DataFrame({"head_id": entity_ids[rows[order]], "relation": ENTITY_RELATION,
                         "tail_id": entity_ids[cols[order]]})


def _user_links_frame(config: SynthConfig, plan: _Plan, user_ids: np.ndarray,
                      gen: np.random.Generator) -> pd.DataFrame | None:
    if config.follows_per_user == 0:
        return None

    def draw(rows: np.ndarray) -> np.ndarray:
        same = gen.random(rows.size) < _FOLLOW_SAME_TOPIC_P
        return np.where(same, plan.user_pool.sample(plan.user_main[rows], gen),
                        gen.integers(0, config.users, rows.size))

    counts = np.full(config.users, config.follows_per_user)
    rows, cols = _sample_distinct(counts, config.users, draw, gen, forbid_self=True)
    order = np.lexsort((cols, rows))
    return pd.DataFrame({"user_id": user_ids[rows[order]], "other_id": user_ids[cols[order]]})


def _interactions_frame(config: SynthConfig, plan: _Plan, user_ids: np.ndarray, item_ids: np.ndarray,
                        rng: dict[str, np.random.Generator]) -> pd.DataFrame:
    gen = rng["interactions"]
    activity = gen.lognormal(0.0, 1.0, config.users)
    counts = _allocate(config.interactions, activity, 2, config.max_interactions_per_user, gen)

    def draw(rows: np.ndarray) -> np.ndarray:
        u = gen.random(rows.size)  # < noise: random topic; < noise + (1 - noise) * w: main; else secondary
        topic = np.where(u < _NOISE + (1 - _NOISE) * plan.user_main_weight[rows],
                         plan.user_main[rows], plan.user_second[rows])
        topic = np.where(u < _NOISE, _random_topic(rows.size, plan.n_topics, gen), topic)
        return plan.item_pool.sample(topic, gen)

    users, items = _sample_distinct(counts, config.items, draw, gen)
    columns: dict[str, np.ndarray] = {}
    if config.with_timestamps:
        ts = rng["timestamps"]
        start = ts.uniform(0.0, 0.75, config.users) * _YEAR_S
        span = ts.uniform(0.1, 1.0, config.users) * (_YEAR_S - start)
        seconds = (start[users] + ts.random(users.size) * span[users]).astype(np.int64)
        order = np.argsort(users * _YEAR_S + seconds)  # by user, then time
        columns["timestamp"] = seconds[order]
    else:
        order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    frame = pd.DataFrame({"user_id": user_ids[users], "item_id": item_ids[items]})
    if config.with_ratings:
        frame["rating"] = _ratings(plan, users, items, rng["ratings"])
    if config.with_timestamps:
        frame["timestamp"] = pd.to_datetime(columns["timestamp"] + _EPOCH_S, unit="s", utc=True)
    return frame


def _ratings(plan: _Plan, users: np.ndarray, items: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """1..5 in steps of 0.5: high on the user's main topic, middling on the secondary, low elsewhere."""
    topic = plan.item_topic[items]
    on_main = topic == plan.user_main[users]
    on_second = topic == plan.user_second[users]
    touches_main = plan.item_second[items] == plan.user_main[users]
    mean = np.where(on_main, 4.1, np.where(on_second, 3.6, np.where(touches_main, 3.2, 2.6)))
    user_bias = gen.normal(0.0, 0.3, plan.user_main.size)
    item_bias = gen.normal(0.0, 0.3, plan.item_topic.size)
    noisy = mean + user_bias[users] + item_bias[items] + gen.normal(0.0, 0.6, users.size)
    return np.clip(np.round(noisy * 2) / 2, 1.0, 5.0)


# ---------------------------------------------------------------------------------------------------------
# Writing.

_SEPARATORS = {"csv": ",", "tsv": "\t"}
FORMATS = (*_SEPARATORS, "parquet")


def write_dataset(dataset: Dataset, out_dir: Path | str, fmt: str = "csv") -> dict[str, Path]:
    """Write each present table of ``dataset`` as ``out_dir/<table>.<fmt>`` in the generic format.

    Args:
        dataset: the dataset to write.
        out_dir: the folder, created if missing; existing files of the same names are replaced.
        fmt: ``"csv"``, ``"tsv"`` or ``"parquet"``. In csv and tsv, datetime columns become ISO-8601 UTC
            text (``2023-04-05T12:34:56Z``, with fractions of a second only where there are any; naive
            datetimes are taken as UTC); parquet keeps them as timestamps.

    Returns:
        The path written for each table, by table name.

    Raises:
        KgrecError: ``fmt`` is not one of the three, or ``out_dir`` is a file or cannot be created; checked
            before anything is written.
    """
    if fmt not in FORMATS:
        raise KgrecError(f"the format (got {fmt!r}) must be one of 'csv', 'tsv', 'parquet'")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise KgrecError(f"{out_dir} is a file, not a folder: choose a folder for the dataset's files")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent is a file, no permission, ...
        raise KgrecError(f"cannot create the folder {out_dir}: {e.strerror or e}") from e
    paths: dict[str, Path] = {}
    for name, table in dataset.tables().items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            table.to_parquet(path, index=False)
        else:
            _with_iso_timestamps(table).to_csv(path, sep=_SEPARATORS[fmt], index=False)
        paths[name] = path
    return paths


def _with_iso_timestamps(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every datetime column as ISO-8601 UTC text (a shallow copy if any changes)."""
    datetime_columns = [c for c in table.columns if pd.api.types.is_datetime64_any_dtype(table[c])]
    if not datetime_columns:
        return table
    table = table.copy(deep=False)
    for column in datetime_columns:
        values = table[column]
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        stamps = values.to_numpy(dtype="datetime64[ns]")
        nanos = stamps.view(np.int64)[~np.isnat(stamps)]
        unit = next((u for u, step in (("s", 10**9), ("ms", 10**6), ("us", 10**3)) if not (nanos % step).any()),
                    "ns")
        text = np.datetime_as_string(stamps, unit=unit, timezone="UTC").astype(object)
        text[np.isnat(stamps)] = ""
        table[column] = text
    return table
