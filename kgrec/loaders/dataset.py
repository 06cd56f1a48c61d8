"""kgrec's generic dataset format: a few pandas tables with documented columns (docs/data-format.md).

Every loader — the generic ``kgrec load generic`` and each dataset adapter — produces a :class:`Dataset`,
and one ingest path writes any :class:`Dataset` into Neo4j. Ids are strings everywhere.

=================  =====================================  ==========================================
table              required columns                       optional columns
=================  =====================================  ==========================================
``interactions``   ``user_id``, ``item_id``               ``rating``, ``weight``, ``timestamp``, ``kind``
``items``          ``item_id``, ``title``                 ``text``, any attribute column
``entities``       ``entity_id``, ``name``                ``type``, ``text``
``item_entity``    ``item_id``, ``relation``, ``entity_id``
``entity_entity``  ``head_id``, ``relation``, ``tail_id``
``user_links``     ``user_id``, ``other_id``
``relations``      ``relation``                           ``description``
=================  =====================================  ==========================================

``timestamp`` is a UTC ``datetime64`` column once read (files may hold ISO-8601 text or Unix seconds);
``kind`` defaults to ``"interaction"``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id"),
    "items": ("item_id", "title"),
    "entities": ("entity_id", "name"),
    "item_entity": ("item_id", "relation", "entity_id"),
    "entity_entity": ("head_id", "relation", "tail_id"),
    "user_links": ("user_id", "other_id"),
    "relations": ("relation",),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("rating", "weight", "timestamp", "kind"),
    "items": ("text",),
    "entities": ("type", "text"),
    "item_entity": (),
    "entity_entity": (),
    "user_links": (),
    "relations": ("description",),
}
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id"),
    "items": ("item_id",),
    "entities": ("entity_id",),
    "item_entity": ("item_id", "entity_id"),
    "entity_entity": ("head_id", "tail_id"),
    "user_links": ("user_id", "other_id"),
    "relations": ("relation",),
}
DEFAULT_KIND = "interaction"
#: The times an interaction can have: what Python's ``datetime`` holds (the driver, the API and the exports
#: convert to it), so a load refuses a timestamp outside, instead of a later read failing on it.
TIME_RANGE = (pd.Timestamp("0001-01-01", tz="UTC"), pd.Timestamp("9999-12-31T23:59:59", tz="UTC"))


@dataclass
class Dataset:
    """One dataset in the generic format; any table but ``interactions`` may be absent.

    Attributes:
        name: a short name, recorded with loads and exports (``hetrec-lastfm``, ``synthetic``, ...).
        interactions: user behaviour.
        items: item titles, text and attributes.
        entities: knowledge-graph entities.
        item_entity: item→entity knowledge triples.
        entity_entity: entity→entity knowledge triples.
        user_links: user→user social links (``FOLLOWS``).
        relations: relation names with descriptions (registered as ``(:Relation)``).
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    entities: pd.DataFrame | None = None
    item_entity: pd.DataFrame | None = None
    entity_entity: pd.DataFrame | None = None
    user_links: pd.DataFrame | None = None
    relations: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that are present, by name, in load order's table names."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "name" and getattr(self, f.name) is not None
        }

    def summary(self) -> dict[str, int]:
        """Row counts per present table."""
        return {name: len(table) for name, table in self.tables().items()}
