"""The PyG export against a real Neo4j: structure, id maps, filters, paging, splits and consistency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label, RelType
from kgrec.loaders import export as export_module
from kgrec.loaders.export import INTERACTS, Export, ExportError, SubgraphFilter, export_subgraph
from kgrec.loaders.ingest import LoadOptions, load_dataset
from kgrec.loaders.splits import SplitSpec
from kgrec.loaders.synth import SynthConfig, make_synthetic
from tests.conftest import cli_env, run_cli

CONFIG = SynthConfig(users=120, items=80, entities=30, interactions=2400, topics=4, seed=3)


@pytest.fixture
def loaded(graph: Graph) -> tuple[Graph, object]:
    dataset = make_synthetic(CONFIG)
    load_dataset(graph, dataset, LoadOptions(progress=False))
    return graph, dataset


def edge_set(data, edge_type) -> set[tuple[str, str]]:
    src, _, dst = edge_type
    ei = data[edge_type].edge_index
    return {(data[src].node_id[a], data[dst].node_id[b]) for a, b in ei.t().tolist()}


def test_export_reproduces_the_dataset(loaded) -> None:
    graph, dataset = loaded
    result = export_subgraph(graph, page_size=7)  # tiny pages: many keyset and id pages
    data = result.data
    assert set(data["user"].node_id) == set(dataset.interactions["user_id"]) | set(dataset.user_links["user_id"])
    assert data["item"].node_id == sorted(dataset.items["item_id"])  # stable order: by id
    assert edge_set(data, INTERACTS) == set(zip(dataset.interactions["user_id"], dataset.interactions["item_id"]))
    assert edge_set(data, ("user", "follows", "user")) == set(zip(dataset.user_links["user_id"], dataset.user_links["other_id"]))
    for relation, part in dataset.item_entity.groupby("relation"):
        name = next(k for k, v in data.relations.items() if v == relation)
        assert edge_set(data, ("item", name, "entity")) == set(zip(part["item_id"], part["entity_id"]))
        rev = data[("entity", f"rev_{name}", "item")].edge_index
        assert torch.equal(rev, data[("item", name, "entity")].edge_index.flip(0))
    # edge attributes line up with their edges
    attrs = data[INTERACTS].edge_attr
    ratings = dataset.interactions.set_index(["user_id", "item_id"])["rating"]
    for k in range(0, attrs.shape[0], 97):
        u, i = data[INTERACTS].edge_index[:, k].tolist()
        assert attrs[k, 1].item() == pytest.approx(ratings[(data["user"].node_id[u], data["item"].node_id[i])])
    row = dataset.items.iloc[0]
    assert data["item"].text[data["item"].node_id.index(row["item_id"])] == f"{row['title']}. {row['text']}"
    assert result.meta["counts"]["interactions"] == len(dataset.interactions)
    # the snapshot's fingerprint (one query) holds each label's and relationship type's own count
    assert result.meta["fingerprint"] == {
        **{label.value: graph.read(q.count_label(label))[0]["count"] for label in Label},
        **{rel.value: graph.read(q.count_rel_type(rel))[0]["count"] for rel in RelType}}
    assert result.meta["fingerprint"]["User"] == len(data["user"].node_id)
    assert result.meta["split"]["kind"] == "random" and sum(result.meta["split"]["edges"].values()) == len(dataset.interactions)


def test_filters(loaded) -> None:
    graph, dataset = loaded
    entity = dataset.item_entity["entity_id"].value_counts().index[0]
    by_entity = export_subgraph(graph, SubgraphFilter(entity=entity)).data
    linked = set(dataset.item_entity.loc[dataset.item_entity["entity_id"] == entity, "item_id"])
    assert set(by_entity["item"].node_id) == linked
    expected_edges = dataset.interactions[dataset.interactions["item_id"].isin(linked)]
    assert edge_set(by_entity, INTERACTS) == set(zip(expected_edges["user_id"], expected_edges["item_id"]))
    assert set(by_entity["user"].node_id) == set(expected_edges["user_id"])

    since = dataset.interactions["timestamp"].quantile(0.9)
    active = export_subgraph(graph, SubgraphFilter(active_since=since.to_pydatetime())).data
    assert set(active["user"].node_id) == set(dataset.interactions.loc[dataset.interactions["timestamp"] >= since, "user_id"])

    sample = export_subgraph(graph, SubgraphFilter(sample_users=25, seed=1)).data
    again = export_subgraph(graph, SubgraphFilter(sample_users=25, seed=1)).data
    assert len(sample["user"].node_id) == 25 and sample["user"].node_id == again["user"].node_id

    with pytest.raises(ExportError, match="no entity 'nonexistent' in the graph"):  # was: an empty export, exit 0
        export_subgraph(graph, SubgraphFilter(entity="nonexistent"))


def test_splits_recorded_and_reproducible(loaded) -> None:
    graph, _ = loaded
    a = export_subgraph(graph, split=SplitSpec("random", val=0.1, test=0.2, seed=0))
    b = export_subgraph(graph, split=SplitSpec("random", val=0.1, test=0.2, seed=0))
    assert torch.equal(a.data[INTERACTS].split, b.data[INTERACTS].split)
    temporal = export_subgraph(graph, split=SplitSpec("temporal")).data[INTERACTS]
    ts = temporal.edge_attr[:, 2]
    assert ts[temporal.split == 2].min() >= ts[temporal.split == 0].max()
    last = export_subgraph(graph, split=SplitSpec("leave_last_out")).data[INTERACTS]
    assert (np.bincount(last.edge_index[0][last.split == 2].numpy()) <= 1).all()


def test_save_and_load(loaded, tmp_path: Path) -> None:
    graph, _ = loaded
    saved = export_subgraph(graph).save(tmp_path / "exp")
    back = Export.load(saved)
    ids = pd.read_parquet(saved / "ids" / "item.parquet")
    assert list(ids["id"]) == back.data["item"].node_id and list(ids["index"]) == list(range(len(ids)))
    assert back.meta["counts"]["items"] == CONFIG.items


def test_an_edit_during_the_export_is_retried_or_refused(loaded, monkeypatch) -> None:
    graph, _ = loaded
    real = export_module._export_once
    calls = {"n": 0}

    def edit_during_first(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            graph.write("CREATE (:Item {id: 'late-item', title: 'Late'})")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "_export_once", edit_during_first)
    result = export_subgraph(graph)
    assert result.meta["attempts"] == 2 and "late-item" in result.data["item"].node_id

    def always_edit(*args, **kwargs):
        graph.write("CREATE (:Entity {id: randomUUID(), name: 'x'})")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "_export_once", always_edit)
    with pytest.raises(ExportError, match=r"kept changing during 2 export attempts \(Entity \d+→\d+\)"):
        export_subgraph(graph, max_attempts=2)


def test_cli_export(settings, loaded, tmp_path: Path) -> None:
    result = run_cli("export", "--out", "exp", "--split", "leave_last_out", "--no-progress",
                     env=cli_env(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = Export.load(tmp_path / "exp").meta
    assert meta["split"]["kind"] == "leave_last_out" and meta["counts"]["users"] == CONFIG.users
