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
from kgrec.loaders.dataset import Dataset
from kgrec.loaders.export import INTERACTS, Export, ExportError, SubgraphFilter, export_subgraph
from kgrec.loaders.ingest import LoadOptions, load_dataset
from kgrec.loaders.splits import SplitSpec
from kgrec.loaders.synth import SynthConfig, make_synthetic
from kgrec.pipeline import _names, _titles
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
    ts = temporal.ts
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


def test_a_sample_of_an_entitys_users_is_drawn_from_them(loaded) -> None:
    """--entity E --sample-users N: N of E's users (it sampled all users first, then kept those of E: fewer,
    often none), with all their interactions with E's items and none of the other users'."""
    graph, dataset = loaded
    entity = dataset.item_entity["entity_id"].value_counts().index[0]
    linked = set(dataset.item_entity.loc[dataset.item_entity["entity_id"] == entity, "item_id"])
    of_entity = dataset.interactions[dataset.interactions["item_id"].isin(linked)]
    users = set(of_entity["user_id"])
    n = len(users) // 2
    assert 5 < n < CONFIG.users // 2
    sample = export_subgraph(graph, SubgraphFilter(entity=entity, sample_users=n, seed=1), page_size=7).data
    picked = set(sample["user"].node_id)
    assert len(picked) == n and picked <= users
    assert sample["user"].node_id == sorted(picked)
    expected = of_entity[of_entity["user_id"].isin(picked)]
    assert edge_set(sample, INTERACTS) == set(zip(expected["user_id"], expected["item_id"]))
    assert set(sample["item"].node_id) == linked
    again = export_subgraph(graph, SubgraphFilter(entity=entity, sample_users=n, seed=1)).data
    assert again["user"].node_id == sample["user"].node_id
    other = export_subgraph(graph, SubgraphFilter(entity=entity, sample_users=n, seed=2)).data
    assert len(other["user"].node_id) == n and other["user"].node_id != sample["user"].node_id
    # more than there are: all of them, as without --entity
    everyone = export_subgraph(graph, SubgraphFilter(entity=entity, sample_users=len(users) + 5)).data
    assert set(everyone["user"].node_id) == users
    # with --active-since too: the sample is of E's users that are active
    since = dataset.interactions["timestamp"].quantile(0.5)
    active = set(dataset.interactions.loc[dataset.interactions["timestamp"] >= since, "user_id"]) & users
    both = export_subgraph(graph, SubgraphFilter(entity=entity, active_since=since.to_pydatetime(),
                                                 sample_users=len(active) - 2, seed=0)).data
    assert len(both["user"].node_id) == len(active) - 2 and set(both["user"].node_id) <= active


BASE = 1_600_000_000  # Unix seconds of 2020: float32 holds only multiples of 128 s here


def close_in_time() -> tuple[Dataset, pd.DataFrame]:
    """Six users who rated five items seconds apart (odd users a to e, even users e to a: all one float32
    time) and viewed their latest item earlier; the dataset and its rows with their exact ``seconds``."""
    rows = []
    for u in range(6):
        for k, item in enumerate("abcde" if u % 2 else "edcba"):
            rows.append((f"u{u}", item, "rating", BASE + 7 * k + u + 0.25 * (u % 3)))
        rows.append((f"u{u}", "e" if u % 2 else "a", "view", BASE + 1 + u))  # an earlier view of the latest item
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "kind", "seconds"])
    frame["timestamp"] = pd.to_datetime((frame["seconds"] * 1000).round().astype("int64"), unit="ms", utc=True)
    items = pd.DataFrame({"item_id": list("abcde"), "title": list("ABCDE")})
    return Dataset("close-in-time", frame.drop(columns="seconds"), items=items), frame


def test_times_are_exact_and_the_time_splits_go_by_them(graph: Graph, tmp_path: Path) -> None:
    """The export keeps the graph's milliseconds (float32 rounded 2020's times to 128 s, so leave_last_out
    picked a user's first item as the latest and the time splits misordered close times), and the split
    keeps both kinds of one (user, item) together."""
    dataset, frame = close_in_time()
    load_dataset(graph, dataset, LoadOptions(progress=False))
    export = export_subgraph(graph, split=SplitSpec("leave_last_out"), page_size=3)
    store = export.data[INTERACTS]
    assert store.ts.dtype == torch.float64 and store.edge_attr.shape == (len(frame), 2)
    users = [export.data["user"].node_id[u] for u in store.edge_index[0].tolist()]
    items = [export.data["item"].node_id[i] for i in store.edge_index[1].tolist()]
    kinds = [export.data.interaction_kinds[k] for k in store.kind.tolist()]
    exact = frame.set_index(["user_id", "item_id", "kind"])["seconds"]
    assert store.ts.tolist() == [exact[key] for key in zip(users, items, kinds)]
    latest = frame.loc[frame.groupby("user_id")["seconds"].idxmax()].set_index("user_id")["item_id"]
    split = store.split.tolist()
    for user in latest.index:
        held_out = {(i, s) for u, i, s in zip(users, items, split) if u == user and s != 0}
        assert held_out == {(latest[user], 2), ("d" if int(user[1:]) % 2 else "b", 1)}, user
    pairs: dict[tuple[str, str], set[int]] = {}
    for key, s in zip(zip(users, items), split):
        pairs.setdefault(key, set()).add(s)
    assert all(len(s) == 1 for s in pairs.values())  # the view goes with its item's rating

    temporal = export_subgraph(graph, split=SplitSpec("temporal", val=0.2, test=0.2)).data
    pair_time = frame.groupby(["user_id", "item_id"])["seconds"].max()  # a pair's latest time
    cut = np.quantile(pair_time, 0.8)
    for (u, i), s in zip(temporal[INTERACTS].edge_index.t().tolist(), temporal[INTERACTS].split.tolist()):
        key = (temporal["user"].node_id[u], temporal["item"].node_id[i])
        assert (s == 2) == (pair_time[key] > cut), key

    back = Export.load(export.save(tmp_path / "exp")).data[INTERACTS]
    assert back.ts.dtype == torch.float64 and torch.equal(back.ts, store.ts)


def test_titles_and_names_travel_whole(graph: Graph) -> None:
    """Explanations took the title from `title. text`, cut at the first '. ' ('Pablo S. Eriksen' became 'Pablo S')."""
    graph.write("CREATE (u:User {id: 'u1'})-[:INTERACTED {kind: 'interaction'}]->"
                "(i:Item {id: 'i1', title: 'Api Detective. Part Two', text: 'a mystery'})-[:RELATES_TO {relation: 'by'}]->"
                "(:Entity {id: 'e1', name: 'Pablo S. Eriksen', text: 'writer'})")
    data = export_subgraph(graph, split=None).data
    assert data["item"].text == ["Api Detective. Part Two. a mystery"]
    assert _titles(data) == ["Api Detective. Part Two"] and _names(data) == ["Pablo S. Eriksen"]


@pytest.mark.parametrize("edit, message", [
    ("CREATE (:Item {id: 42, title: 'numeric id', text: 'x'})",
     r"^1 Item node\(s\) have an id that is not a string \(or none\), and would be left out of the export"),
    ("MATCH (i:Item {id: 'i1'}) SET i.text = ['a', 'list']",
     r"^1 Item node\(s\) have a text that is not a string, the first 'i1' \(\['a', 'list'\]\)"),
    ("MATCH (i:Item {id: 'i1'}) SET i.title = 1984", r"^1 Item node\(s\) have a title that is not a string, the first 'i1'"),
    ("MATCH (e:Entity {id: 'e1'}) SET e.name = 7", r"^1 Entity node\(s\) have a name that is not a string"),
    ("MATCH ()-[r:INTERACTED]->() SET r.ts = '2026-12-01'",
     r"^1 INTERACTED relationship\(s\) have a ts that is not a datetime, the first from user 'u1' to item 'i1'"),
])
def test_a_value_of_the_wrong_type_stops_the_export_naming_it(graph: Graph, edit: str, message: str) -> None:
    """Each of these, set by hand, used to be a traceback (a list's .strip(), r.ts.epochMillis of a string) or,
    for the numeric id, an item silently left out (the pages go by string id)."""
    graph.write("CREATE (u:User {id: 'u1'})-[:INTERACTED {kind: 'interaction', ts: datetime()}]->"
                "(i:Item {id: 'i1', title: 'T', text: 'x'})-[:RELATES_TO {relation: 'by'}]->(:Entity {id: 'e1', name: 'E'})")
    export_subgraph(graph, split=None)  # clean: exports
    graph.write(edit)
    with pytest.raises(ExportError, match=message):
        export_subgraph(graph, split=None)
