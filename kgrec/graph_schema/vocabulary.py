"""The fixed vocabulary of kgrec's graph: labels, relationship types and their properties.

Labels and relationship types cannot be Cypher parameters, so every one that kgrec puts into a query
comes from these enums and goes in backquoted through :func:`quote`. Knowledge-graph relation names
(``genre``, ``film.actor.film``, ...) are open-ended data, not vocabulary: they are stored in the
``relation`` property of ``RELATES_TO`` and registered as ``(:Relation {name})`` nodes (see docs/schema.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kgrec.errors import SchemaError


class Label(str, Enum):
    USER = "User"
    ITEM = "Item"
    ENTITY = "Entity"
    RELATION = "Relation"
    MODEL_RUN = "ModelRun"
    MIGRATION = "KgrecMigration"

    def __str__(self) -> str:
        return self.value


class RelType(str, Enum):
    INTERACTED = "INTERACTED"
    FOLLOWS = "FOLLOWS"
    RELATES_TO = "RELATES_TO"
    RECOMMENDED = "RECOMMENDED"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Prop:
    """One property: its name, Cypher type, whether ``schema check`` requires it, and what it means."""

    name: str
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class RelSpec:
    """A relationship type with the labels it may join and its properties."""

    type: RelType
    heads: tuple[Label, ...]
    tails: tuple[Label, ...]
    props: tuple[Prop, ...]
    doc: str


# Model embeddings are written into one of two slots: a run writes the slot the active run does not use,
# then becomes active in one step, so readers never see a half-written run (see docs/schema.md).
EMBEDDING_SLOTS = ("embedding_a", "embedding_b")
#: The integers a Neo4j property can hold (64-bit signed; the driver refuses others).
NEO4J_INTEGER = (-(2**63), 2**63 - 1)

NODE_PROPS: dict[Label, tuple[Prop, ...]] = {
    Label.USER: (
        Prop("id", "STRING", True, "external user id, unique"),
        *(
            Prop(f"embedding_{slot}", "LIST<FLOAT>", doc=f"model embedding, slot {slot} (written back by a run)")
            for slot in "ab"
        ),
        *(Prop(f"embedding_{slot}_run", "STRING", doc=f"ModelRun.id that wrote embedding_{slot}") for slot in "ab"),
    ),
    Label.ITEM: (
        Prop("id", "STRING", True, "external item id, unique"),
        Prop("title", "STRING", True, "display name"),
        Prop("text", "STRING", doc="free text for the language model (description, tags, ...)"),
        Prop("text_embedding", "LIST<FLOAT>", doc="sentence-transformers vector of title + text (vector index)"),
        Prop("text_model", "STRING", doc="encoder that produced text_embedding"),
        Prop("text_hash", "STRING", doc="hash of the encoded text; re-encode when it changes"),
        *(
            Prop(f"embedding_{slot}", "LIST<FLOAT>", doc=f"model embedding, slot {slot} (written back by a run)")
            for slot in "ab"
        ),
        *(Prop(f"embedding_{slot}_run", "STRING", doc=f"ModelRun.id that wrote embedding_{slot}") for slot in "ab"),
    ),
    Label.ENTITY: (
        Prop("id", "STRING", True, "external entity id, unique"),
        Prop("name", "STRING", True, "display name"),
        Prop("type", "STRING", doc="kind of entity: genre, tag, person, place, ..."),
        Prop("text", "STRING", doc="optional description for the language model"),
    ),
    Label.RELATION: (
        Prop("name", "STRING", True, "a knowledge relation name used in RELATES_TO.relation, unique"),
        Prop("description", "STRING", doc="what the relation means"),
    ),
    Label.MODEL_RUN: (
        Prop("id", "STRING", True, "run id, unique"),
        Prop("created_at", "DATE TIME", True, "when the run started"),
        Prop("params", "STRING", doc="hyperparameters (JSON)"),
        Prop("metrics", "STRING", doc="evaluation metrics (JSON)"),
        Prop("active", "BOOLEAN", True, "the one run readers are served from"),
        Prop("embedding_slot", "STRING", doc="embedding_a or embedding_b: where this run's embeddings are"),
        Prop("status", "STRING", doc="writing, complete (written in full) or superseded (its slot was reused)"),
        Prop("activated_at", "DATE TIME", doc="when it last became the active run"),
        Prop("counts", "STRING", doc="what it wrote: embeddings and recommendations per label (JSON)"),
        Prop("checkpoint", "STRING", doc="folder of the run's model checkpoint (kgrec.pt): for refresh and new items"),
        Prop("top_k", "INTEGER", doc="recommendations written per user"),
    ),
    Label.MIGRATION: (
        Prop("version", "INTEGER", True, "migration number, unique"),
        Prop("name", "STRING", True, "what it does"),
        Prop("checksum", "STRING", True, "hash of its statements"),
        Prop("applied_at", "DATE TIME", True, "when it was applied"),
    ),
}

REL_SPECS: dict[RelType, RelSpec] = {
    spec.type: spec
    for spec in (
        RelSpec(
            RelType.INTERACTED,
            (Label.USER,),
            (Label.ITEM,),
            (
                Prop("weight", "FLOAT", doc="implicit strength (play count, clicks)"),
                Prop("rating", "FLOAT", doc="explicit rating"),
                Prop("ts", "DATE TIME", doc="when it happened"),
                Prop("kind", "STRING", doc="view, click, purchase, listen, rate, ..."),
                Prop("event_id", "STRING", doc="client event id, for idempotent inserts"),
            ),
            "a user's behaviour on an item",
        ),
        RelSpec(RelType.FOLLOWS, (Label.USER,), (Label.USER,), (), "a social link between users"),
        RelSpec(
            RelType.RELATES_TO,
            (Label.ITEM, Label.ENTITY),
            (Label.ENTITY,),
            (Prop("relation", "STRING", True, "the knowledge relation name, registered as a :Relation"),),
            "knowledge: Item→Entity and Entity→Entity triples",
        ),
        RelSpec(
            RelType.RECOMMENDED,
            (Label.USER,),
            (Label.ITEM,),
            (
                Prop("score", "FLOAT", True, "model score"),
                Prop("rank", "INTEGER", True, "1 = best"),
                Prop("run", "STRING", True, "ModelRun.id that wrote it"),
                Prop("explanation", "STRING", doc="contributing paths and fusion weights (JSON)"),
            ),
            "a precomputed top-K list entry, written back by a model run",
        ),
    )
}


def quote(identifier: Label | RelType | str) -> str:
    """Backquote a label, relationship type or property name from the vocabulary; refuse anything else."""
    if isinstance(identifier, (Label, RelType)):
        return f"`{identifier.value}`"
    known = {p.name for props in NODE_PROPS.values() for p in props}
    known |= {p.name for spec in REL_SPECS.values() for p in spec.props}
    if identifier not in known:
        raise SchemaError(f"{identifier!r} is not in kgrec's graph vocabulary; it cannot go into a query")
    return f"`{identifier}`"
