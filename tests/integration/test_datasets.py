"""Each real dataset: adapter → Neo4j → PyG export; the counts agree at every step, and a second load
changes nothing. The adapters' own counts are checked against the raw files in tests/unit/test_adapters.py."""

from __future__ import annotations

import pytest
import torch

from kgrec.db import Graph
from kgrec.graph_schema.migrations import apply_migrations
from kgrec.loaders.adapters import ADAPTERS
from kgrec.loaders.dataset import Dataset
from kgrec.loaders.export import INTERACTS, export_subgraph
from kgrec.loaders.ingest import LoadOptions, load_dataset
from kgrec.model.data import RecData
from tests.conftest import DATASET_FOLDERS, SHARED_DATA
from tests.integration.test_ingest import graph_counts

OPTIONS = LoadOptions(progress=False)


def expected_counts(dataset: Dataset) -> dict[str, int]:
    """What the graph must hold after loading ``dataset`` into an empty database."""
    inter = dataset.interactions
    users = set(inter["user_id"])
    if dataset.user_links is not None:
        users |= set(dataset.user_links["user_id"]) | set(dataset.user_links["other_id"])
    relations = set()
    for table in (dataset.item_entity, dataset.entity_entity):
        if table is not None:
            relations |= set(table["relation"])
    return {
        "users": len(users),
        "items": len(dataset.items),
        "entities": 0 if dataset.entities is None else len(dataset.entities),
        "relations": len(relations | (set() if dataset.relations is None else set(dataset.relations["relation"]))),
        "interactions": len(inter.drop_duplicates(["user_id", "item_id"] + (["kind"] if "kind" in inter else []))),
        "item_entity": 0 if dataset.item_entity is None else len(dataset.item_entity),
        "entity_entity": 0 if dataset.entity_entity is None else len(dataset.entity_entity),
        "follows": 0 if dataset.user_links is None else len(dataset.user_links),
    }


@pytest.mark.parametrize("key", list(DATASET_FOLDERS))
def test_dataset_loads_exports_and_reloads(graph: Graph, key: str) -> None:
    dataset = ADAPTERS[key](SHARED_DATA / DATASET_FOLDERS[key])
    apply_migrations(graph, dimension=384)
    report = load_dataset(graph, dataset, OPTIONS)
    assert len(report.rejected) == 0, report.rejected.head()
    expected = expected_counts(dataset)
    assert graph_counts(graph) == expected

    export = export_subgraph(graph, page_size=5000)
    counts = export.meta["counts"]
    assert counts == {
        "users": expected["users"], "items": expected["items"], "entities": expected["entities"],
        "interactions": expected["interactions"], "item_entity": expected["item_entity"],
        "entity_entity": expected["entity_entity"], "follows": expected["follows"],
    }
    data = export.data
    assert export.meta["outside_snapshot"] == {}
    # spot-check one interaction end to end: ids map back to the source row
    first = dataset.interactions.iloc[0]
    u = data["user"].node_id.index(first["user_id"])
    i = data["item"].node_id.index(first["item_id"])
    edges = data[INTERACTS].edge_index
    assert ((edges[0] == u) & (edges[1] == i)).any()
    assert sum(export.meta["split"]["edges"].values()) == expected["interactions"]
    # explicit ratings reach the models: every rated source row, by split, with its value
    rec = RecData.from_hetero(data)
    source = dataset.interactions
    rated = source.dropna(subset=["rating"]) if "rating" in source else source.iloc[:0]
    rec_rated = [rec.ratings(split)[1] for split in ("train", "val", "test")]
    assert sum(r.numel() for r in rec_rated) == len(rated.drop_duplicates(["user_id", "item_id"]))
    assert rec.has_ratings == (len(rated) > 0)
    if len(rated):
        assert float(torch.cat(rec_rated).double().sum()) == pytest.approx(
            float(rated.drop_duplicates(["user_id", "item_id"], keep="last")["rating"].sum()), rel=1e-6)

    again = load_dataset(graph, dataset, OPTIONS)
    assert sum(again.created.values()) == 0 and graph_counts(graph) == expected
