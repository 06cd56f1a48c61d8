"""Request bodies and responses of the API (pydantic); their field docs show in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from kgrec.graph_schema.vocabulary import NEO4J_INTEGER, NODE_PROPS, Label

Id = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"\S")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Source = Literal["precomputed", "on_the_fly", "popular"]

# Item properties that kgrec owns: a POST /items attribute may not overwrite them.
RESERVED_ITEM_PROPERTIES = frozenset(p.name for p in NODE_PROPS[Label.ITEM])


# -- recommendations -----------------------------------------------------------------------------------
class RecommendedItem(BaseModel):
    item_id: str
    title: str | None
    score: float = Field(description="model score (precomputed or dot product); interaction count for popular items")
    rank: int = Field(description="1-based position in this response")


class RecommendationList(BaseModel):
    user_id: str
    run_id: str
    source: Source = Field(
        description="precomputed: the run's stored list; on_the_fly: scored now from stored embeddings "
        "(the user interacted since the run was activated, or has no list); popular: most interacted items "
        "(no history to score from)"
    )
    items: list[RecommendedItem]


# -- explanations ----------------------------------------------------------------------------------------
class StoredPath(BaseModel):
    """One path of the model's stored explanation (kind ``entity``, ``social`` or ``item``)."""

    model_config = ConfigDict(extra="allow")
    kind: str
    via_item: str | None = None
    via_item_title: str | None = None
    relation: str | None = None
    entity: str | None = None
    entity_name: str | None = None
    via_user: str | None = None
    weight: float | None = None


class StoredExplanation(BaseModel):
    """The explanation the run wrote on ``RECOMMENDED.explanation``."""

    model_config = ConfigDict(extra="allow")
    text: str | None = None
    fusion: dict[str, float] | None = None
    paths: list[StoredPath] = []


class EntityPath(BaseModel):
    """user → interacted ``via_item`` → ``entity`` ← the recommended item."""

    via_item: str
    via_item_title: str | None
    relation: str | None = Field(description="how via_item relates to the entity")
    entity: str
    entity_name: str | None
    entity_items: int = Field(description="items related to the entity (fewer: more telling; paths sort by it)")


class SocialPath(BaseModel):
    """user → followed ``via_user`` → the recommended item."""

    via_user: str
    interactions: int = Field(description="how often via_user interacted with the item")


class EntityPaths(BaseModel):
    count: int = Field(description="all such paths")
    paths: list[EntityPath] = Field(description="the first few")


class SocialPaths(BaseModel):
    count: int = Field(description="all such paths")
    paths: list[SocialPath] = Field(description="the first few")


class LiveExplanation(BaseModel):
    entity: EntityPaths
    social: SocialPaths


class Explanation(BaseModel):
    user_id: str
    item_id: str
    run_id: str
    source: Source
    score: float | None = Field(description="stored score, or the on-the-fly dot product (null when not computable)")
    rank: int | None = Field(description="rank in the run's stored list; null when not stored")
    stored: StoredExplanation | None = Field(
        description="what the run wrote; null when it holds no such recommendation"
    )
    live: LiveExplanation


# -- similar items ---------------------------------------------------------------------------------------
class SimilarItem(BaseModel):
    item_id: str
    title: str | None
    score: float = Field(description="the vector index's cosine score, rescaled to [0, 1]")


class SimilarItems(BaseModel):
    item_id: str
    run_id: str | None
    source: Literal["model", "text", "none"] = Field(
        description="model: the active run's item embeddings; text: the item text embeddings (the item has no "
        "model embedding); none: the item has neither"
    )
    items: list[SimilarItem]


# -- writes ------------------------------------------------------------------------------------------------
class NewInteraction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: Id = Field(description="the client's id of the event: posting it again changes nothing")
    user_id: Id = Field(description="created if new")
    item_id: Id = Field(description="must exist")
    kind: Id = "interaction"
    weight: FiniteFloat | None = None
    rating: FiniteFloat | None = None
    ts: datetime | None = Field(None, description="ISO 8601; UTC when it has no offset; now when absent")


class InteractionCreated(BaseModel):
    created: bool = Field(description="false when the event_id was recorded before")


def _int64(value: Any) -> Any:
    """Refuse integers (alone or in a list) that Neo4j cannot store, before the union would take them as floats."""
    for number in value if isinstance(value, list) else [value]:
        if isinstance(number, int) and not isinstance(number, bool) and not NEO4J_INTEGER[0] <= number <= NEO4J_INTEGER[1]:
            raise ValueError(f"integers must fit in 64 bits, {NEO4J_INTEGER[0]} to {NEO4J_INTEGER[1]} (got {number})")
    return value


# Strict: a value keeps its JSON type, and a list must hold one type (as Neo4j stores lists), so that
# ["1", 2] or [true, 1] are a 422 instead of being coerced to [1, 2] or [1, 1]. Integers may stand in a
# list of floats (JSON has one number type).
_StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
AttributeValue = Annotated[
    StrictStr
    | StrictBool
    | StrictInt
    | _StrictFloat
    | list[StrictStr]
    | list[StrictBool]
    | list[StrictInt]
    | list[_StrictFloat],
    BeforeValidator(_int64),
]


class ItemLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relation: Id = Field(description="a registered (:Relation {name})")
    entity_id: Id = Field(description="an existing (:Entity {id})")


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    title: Id
    text: str | None = None
    links: list[ItemLink] = []
    attributes: dict[str, AttributeValue] = Field({}, description="more item properties (not kgrec's own)")

    @field_validator("attributes")
    @classmethod
    def _no_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.strip():
                raise ValueError("attribute names must not be blank")
            if name in RESERVED_ITEM_PROPERTIES:
                raise ValueError(f"attribute {name!r} is a property kgrec sets itself")
        return value

    @model_validator(mode="after")
    def _distinct_links(self) -> NewItem:
        seen: set[tuple[str, str]] = set()
        for link in self.links:
            key = (link.relation, link.entity_id)
            if key in seen:
                raise ValueError(f"link {key} is given twice")
            seen.add(key)
        return self


class ItemCreated(BaseModel):
    item_id: str
    links: int
    text_embedding: bool = Field(description="the item text was encoded (similar-by-text works)")
    model_embedding: bool = Field(description="the active run's embedder placed it in the run's slot (recommendable)")
    run_id: str | None


# -- runs and operations -------------------------------------------------------------------------------------
class Run(BaseModel):
    id: str
    active: bool
    status: str | None
    slot: str | None
    created_at: str | None = Field(description="ISO 8601 UTC with microseconds; sorts as text")
    activated_at: str | None = Field(description="when it last became the active run; same format")
    params: dict[str, Any] | None
    metrics: dict[str, Any] | None
    counts: dict[str, Any] | None
    checkpoint: str | None
    top_k: int | None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    database: str
    run_id: str
