"""Neighbour-sampled training (kgrec.model.sampled): the sampled graph is the full propagation graph, the
subgraph forward is the full forward where nothing is left out, and a sampled fit trains."""

from __future__ import annotations

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.model import sampled
from kgrec.model.kgrec_net import KGRec, KGRecConfig
from tests.unit.test_kgrec_net import E, I, T, U, net, tiny


def whole_graph_batch(graph):
    """The propagation graph as a 'sampled' batch that left nothing out: every node (n_id = arange) and edge."""
    batch = graph.clone()
    for node in batch.node_types:
        batch[node].n_id = torch.arange(batch[node].num_nodes)
    return batch


@pytest.mark.parametrize("config", [KGRecConfig(dim=8, num_layers=2), KGRecConfig(dim=8, kg_graph=False, use_social=True)])
def test_the_sampled_graph_carries_the_propagation_matrix(config: KGRecConfig) -> None:
    model, _ = net(config)
    graph = sampled.propagation_graph(model.adjacency, U, I)
    n = model.adjacency.shape[0]
    x = torch.randn(n, 3)
    expected = torch.sparse.mm(model.adjacency, x)
    offsets = {"user": 0, "item": U, "entity": U + I}
    got = torch.zeros(n, 3)
    for src, _, dst in graph.edge_types:
        index, weight = graph[src, "to", dst].edge_index, graph[src, "to", dst].weight
        got.index_add_(0, index[1] + offsets[dst], weight.unsqueeze(-1) * x[index[0] + offsets[src]])
        assert torch.equal(graph[dst][f"degree_from_{src}"], torch.bincount(index[1], minlength=graph[dst].num_nodes).float())
    assert torch.allclose(got, expected, atol=1e-6)
    assert ("entity", "to", "item") in graph.edge_types if config.kg_graph else "entity" not in graph.node_types
    assert (("user", "to", "user") in graph.edge_types) == config.use_social


def test_the_parts_of_some_items_are_those_of_the_whole_graph() -> None:
    model, _ = net()
    items = torch.tensor([9, 0, 3, 5, 3])  # the cold item, a hidden id, an item without text, a repeat hidden
    hide = torch.tensor([False, True, False, False, True])
    parts, mask = model.item_parts(hide, items=items)
    for row, item in enumerate(items.tolist()):
        hidden = torch.zeros(I, dtype=torch.bool)
        hidden[item] = bool(hide[row])
        every_parts, every_mask = model.item_parts(hidden)
        assert torch.allclose(parts[row], every_parts[item], atol=1e-6) and torch.equal(mask[row], every_mask[item])
    assert mask[:, 0].tolist() == [False, False, True, True, False]  # 9 is cold; 0 and the second 3 hidden


@pytest.mark.parametrize("kg_graph", [True, False])
def test_a_subgraph_that_left_nothing_out_propagates_as_the_whole_graph(kg_graph: bool) -> None:
    model, _ = net(KGRecConfig(dim=16, num_layers=2, kg_graph=kg_graph))
    out = model.forward_sampled(whole_graph_batch(sampled.propagation_graph(model.adjacency, U, I)))
    users, items = model()
    assert torch.allclose(out["user"], users, atol=1e-5) and torch.allclose(out["item"], items, atol=1e-5)


def test_a_loader_batch_scores_its_seeds_as_the_whole_graph_when_every_neighbour_is_sampled() -> None:
    model, data = net()
    graph = sampled.propagation_graph(model.adjacency, U, I)
    loader = sampled.link_loader(graph, data, num_neighbors=100, num_layers=2, batch_size=8, negatives=3, seed=0)
    batch = next(iter(loader))
    assert batch["item"].dst_neg_index.shape == (8, 3)
    out = model.forward_sampled(batch)
    users, items = model()
    seeds_u = batch["user"].src_index
    seeds_i = torch.cat([batch["item"].dst_pos_index, batch["item"].dst_neg_index.flatten()])
    assert torch.allclose(out["user"][seeds_u], users[batch["user"].n_id[seeds_u]], atol=1e-5)
    assert torch.allclose(out["item"][seeds_i], items[batch["item"].n_id[seeds_i]], atol=1e-5)
    pairs = set(zip(data.train[0].tolist(), data.train[1].tolist()))
    batch_pairs = zip(batch["user"].n_id[seeds_u].tolist(), batch["item"].n_id[batch["item"].dst_pos_index].tolist())
    assert all(p in pairs for p in batch_pairs)  # the positives are training pairs


def test_one_neighbour_per_hop_estimates_the_sums_from_what_was_sampled() -> None:
    model, data = net()
    graph = sampled.propagation_graph(model.adjacency, U, I)
    batch = next(iter(sampled.link_loader(graph, data, num_neighbors=1, num_layers=2, batch_size=4, negatives=1, seed=0)))
    for src, rel, dst in batch.edge_types:
        assert torch.bincount(batch[src, rel, dst].edge_index[1]).max() <= 1  # one in-edge per node and edge type: each node is expanded once
    out = model.forward_sampled(batch)
    assert all(torch.isfinite(value).all() for value in out.values())


def test_sampled_training_trains_and_is_reproducible() -> None:
    def fitted() -> KGRec:
        from kgrec.model.training import TrainConfig

        config = KGRecConfig(dim=8, num_layers=2, num_neighbors=3, neighbourhood=False, negatives=1)
        model = KGRec(torch.randn(I, T, generator=torch.Generator().manual_seed(1)),
                      torch.randn(E, T, generator=torch.Generator().manual_seed(2)), config,
                      TrainConfig(epochs=10, lr=0.05, batch_size=16, eval_every=2))
        return model.fit(tiny())

    first, second = fitted(), fitted()
    losses = [record.loss for record in first.history]
    assert len(losses) == 10 and losses[-1] < 0.9 * losses[0], losses
    assert losses == [record.loss for record in second.history]
    assert first.score(torch.arange(U)).shape == (U, I)


def test_bad_sampling_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KgrecError, match="'num_neighbors' \\(got -1\\)"):
        KGRecConfig(num_neighbors=-1)
    with pytest.raises(KgrecError, match="rating head trains full-batch only"):
        KGRecConfig(num_neighbors=5, rating_weight=1.0)
    model, data = net()
    graph = sampled.propagation_graph(model.adjacency, U, I)
    with pytest.raises(KgrecError, match="'num_neighbors' \\(got 0\\)"):
        sampled.link_loader(graph, data, num_neighbors=0, num_layers=2, batch_size=4, negatives=1, seed=0)
    monkeypatch.setattr("torch_geometric.typing.WITH_PYG_LIB", False)
    monkeypatch.setattr("torch_geometric.typing.WITH_TORCH_SPARSE", False)
    with pytest.raises(KgrecError, match="needs 'pyg-lib' or 'torch-sparse'"):
        sampled.link_loader(graph, data, num_neighbors=5, num_layers=2, batch_size=4, negatives=1, seed=0)
