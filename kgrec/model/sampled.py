"""Neighbour-sampled mini-batch training of :class:`~kgrec.model.kgrec_net.KGRecNet` with PyG's
:class:`~torch_geometric.loader.LinkNeighborLoader`, for graphs whose full-batch training does not fit.

Full-batch training propagates every node at every step: memory grows with the whole graph times the
layers (the backward pass keeps each layer). Sampled training builds each step's computation graph from the
batch's training pairs only: their users, positive items and negative candidates are the seed nodes, and
each hop keeps at most ``num_neighbors`` in-edges per node and edge type (Hamilton et al.,
`"Inductive Representation Learning on Large Graphs" <https://arxiv.org/abs/1706.02216>`_, the sampling
behind PinSage). :meth:`KGRecNet.forward_sampled` runs the same propagation on that subgraph, so one step
costs what the batch's neighbourhood costs, whatever the size of the graph.

What is the same as full-batch: the model, its parameters and checkpoint, the BPR loss with dynamic
negative sampling, validation and early stopping, and inference (the final embeddings are computed over
the whole graph once per validation, without gradients). What differs: each layer's sum is estimated
from the sampled neighbours, and the negative candidates are PyG's ``"triplet"`` negatives, uniform over
all items, so a candidate may now and then be an item the user has seen in training. The optional rating
head is not trained this way.

PyG samples with ``pyg-lib`` or ``torch-sparse``; neither is published as a wheel on PyPI (the README's
set-up builds ``torch-sparse`` from its source distribution).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch_geometric.typing
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling

from kgrec.errors import KgrecError
from kgrec.model.data import RecData

NODE_TYPES = ("user", "item", "entity")  # in the order of KGRecNet.adjacency's rows
SUPERVISION = ("user", "to", "item")  # the training pairs, and the edge type the loader labels


def sampling_available() -> bool:
    """Whether PyG can sample neighbours here (``pyg-lib`` or ``torch-sparse`` is installed)."""
    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


def require_sampling(num_neighbors: int) -> None:
    """A :class:`KgrecError` when ``num_neighbors`` asks for sampled training and PyG cannot sample here."""
    if num_neighbors and not sampling_available():
        raise KgrecError(
            "neighbour-sampled training (num_neighbors > 0) needs 'pyg-lib' or 'torch-sparse', and neither is "
            "installed: build them with `pip install --no-build-isolation torch-scatter==2.1.2` and then "
            "`... torch-sparse==0.6.18` (make install does), or train full-batch with num_neighbors 0"
        )


def propagation_graph(adjacency: Tensor, num_users: int, num_items: int) -> HeteroData:
    """The propagation graph of :class:`KGRecNet` (its :math:`D^{-1/2} A D^{-1/2}` ``adjacency`` over users,
    items and, with ``kg_graph``, entities, in that order) as a HeteroData the loader samples from: one edge
    type ``(src, "to", dst)`` per pair of node types that has entries, each edge with its ``weight`` (the
    message from ``src`` to ``dst`` is ``weight * x_src``), and per node its full in-degree from each
    source type (``degree_from_<src>``), which :meth:`KGRecNet.forward_sampled` scales the sampled sums by."""
    adjacency = adjacency.coalesce().cpu()
    n = adjacency.shape[0]
    bounds = torch.tensor([0, num_users, num_users + num_items, n])
    sizes = {t: int(bounds[k + 1] - bounds[k]) for k, t in enumerate(NODE_TYPES)}
    dst_all, src_all = adjacency.indices()  # x_new[row] += w * x[col]: messages flow col -> row
    weight_all = adjacency.values()
    kind_src = torch.bucketize(src_all, bounds[1:], right=True)
    kind_dst = torch.bucketize(dst_all, bounds[1:], right=True)
    graph = HeteroData()
    for t in NODE_TYPES:
        if sizes[t]:
            graph[t].num_nodes = sizes[t]
    for a, src in enumerate(NODE_TYPES):
        for b, dst in enumerate(NODE_TYPES):
            keep = (kind_src == a) & (kind_dst == b)
            if not keep.any():
                continue
            index = torch.stack([src_all[keep] - bounds[a], dst_all[keep] - bounds[b]])
            graph[src, "to", dst].edge_index = index
            graph[src, "to", dst].weight = weight_all[keep].float()
            graph[dst][f"degree_from_{src}"] = torch.bincount(index[1], minlength=sizes[dst]).float()
    if SUPERVISION not in graph.edge_types:
        raise KgrecError("there are no training interactions to sample from")
    return graph


def link_loader(graph: HeteroData, data: RecData, num_neighbors: int, num_layers: int, batch_size: int,
                negatives: int, seed: int) -> LinkNeighborLoader:
    """Batches of the training pairs of ``data`` with ``negatives`` candidate negative items each and the
    ``num_layers``-hop neighbourhood of all of them, ``num_neighbors`` in-edges per node, edge type and hop;
    shuffled with ``seed``."""
    if num_neighbors < 1:
        raise KgrecError(f"'num_neighbors' (got {num_neighbors}) must be at least 1 for sampled training")
    require_sampling(num_neighbors)
    return LinkNeighborLoader(
        graph,
        num_neighbors={edge_type: [num_neighbors] * max(num_layers, 1) for edge_type in graph.edge_types},
        edge_label_index=(SUPERVISION, data.train),
        neg_sampling=NegativeSampling("triplet", amount=negatives),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


def epoch_batches(loader: LinkNeighborLoader) -> Iterator[tuple[int, tuple[HeteroData]]]:
    """One epoch of ``(pairs in the batch, (batch,))``, as :func:`~kgrec.model.training.fit_bpr` takes them."""
    for batch in loader:
        yield batch["user"].src_index.numel(), (batch,)
