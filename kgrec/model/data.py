"""What models train and are evaluated on: an export's interactions split into train / val / test, as
index tensors, plus the knowledge graph and the text the export carries.

Every model and baseline reads a :class:`RecData`; the split comes from the export
(``data['user', 'interacts', 'item'].split``), so every model compares on the same one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from kgrec.errors import KgrecError
from kgrec.loaders.export import FOLLOWS, INTERACTION_ATTRS, INTERACTS
from kgrec.loaders.splits import TEST, TRAIN, VAL


@dataclass
class RecData:
    """Interactions by split and the side information of one export.

    Attributes:
        num_users, num_items, num_entities: node counts (indices follow the export's id maps).
        train, val, test: ``(2, n)`` long tensors of (user, item) pairs.
        train_weight: implicit strength of each training pair (1.0 where unknown).
        item_entity: ``relation name -> (2, n)`` long tensor of (item, entity) pairs.
        entity_entity: ``relation name -> (2, n)`` long tensor of (entity, entity) pairs.
        follows: ``(2, n)`` long tensor of (user, user) pairs.
        item_text, entity_text: text per item / entity, for the text encoder.
        user_ids, item_ids, entity_ids: the graph ids, by index.
        data: the HeteroData it came from.
        train_rating, val_rating, test_rating: the explicit rating of each pair of the split (NaN where
            the interaction has none), or None when the export has no ratings at all.
        train_time: when each training pair's interaction happened, Unix seconds as float64 (NaN where
            unknown), or None when the export has no times at all.
    """

    num_users: int
    num_items: int
    num_entities: int
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    train_weight: torch.Tensor
    item_entity: dict[str, torch.Tensor] = field(default_factory=dict)
    entity_entity: dict[str, torch.Tensor] = field(default_factory=dict)
    follows: torch.Tensor = field(default_factory=lambda: torch.empty(2, 0, dtype=torch.long))
    item_text: list[str] = field(default_factory=list)
    entity_text: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)
    data: HeteroData | None = None
    train_rating: torch.Tensor | None = None
    val_rating: torch.Tensor | None = None
    test_rating: torch.Tensor | None = None
    train_time: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name, split in (("train_rating", "train"), ("val_rating", "val"), ("test_rating", "test"),
                            ("train_time", "train")):
            values = getattr(self, name)
            if values is not None and values.shape != (getattr(self, split).shape[1],):
                raise KgrecError(f"'{name}' (shape {tuple(values.shape)}) must hold one value per "
                                 f"{split} pair ({getattr(self, split).shape[1]})")

    @property
    def has_times(self) -> bool:
        """Whether some training pair has a known time."""
        return self.train_time is not None and bool(torch.isfinite(self.train_time).any())

    @property
    def has_ratings(self) -> bool:
        """Whether some training pair has an explicit rating."""
        return self.train_rating is not None and bool(torch.isfinite(self.train_rating).any())

    def ratings(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``((2, n) pairs, (n,) ratings)`` of the pairs of ``split`` that have a rating."""
        pairs, rating = getattr(self, split), getattr(self, f"{split}_rating")
        if rating is None:
            return pairs[:, :0], torch.empty(0)
        known = torch.isfinite(rating)
        return pairs[:, known], rating[known]

    @classmethod
    def from_hetero(cls, data: HeteroData, all_train: bool = False) -> RecData:
        """Read the split and side information out of an exported HeteroData (``all_train``: every
        interaction is training data, whatever the split — for scoring with a trained model)."""
        store = data[INTERACTS]
        if "split" not in store and not all_train:
            raise KgrecError("the export has no split: export it with --split random|leave_last_out|temporal")
        edges = store.edge_index
        split = torch.full((edges.shape[1],), TRAIN, dtype=torch.int8) if all_train else store.split
        weight = store.edge_attr[:, INTERACTION_ATTRS.index("weight")].clone()
        weight[torch.isnan(weight)] = 1.0
        rating = store.edge_attr[:, INTERACTION_ATTRS.index("rating")]
        rated = bool(torch.isfinite(rating).any())
        ts = store.ts if "ts" in store else None
        timed = ts is not None and bool(torch.isfinite(ts).any())
        item_entity = {
            data.relations[rel]: data[(src, rel, dst)].edge_index
            for src, rel, dst in data.edge_types
            if src == "item" and dst == "entity" and not rel.startswith("rev_")
        }
        entity_entity = {
            data.relations[rel]: data[(src, rel, dst)].edge_index
            for src, rel, dst in data.edge_types
            if src == "entity" and dst == "entity" and not rel.startswith("rev_")
        }
        return cls(
            num_users=data["user"].num_nodes,
            num_items=data["item"].num_nodes,
            num_entities=data["entity"].num_nodes,
            train=edges[:, split == TRAIN],
            val=edges[:, split == VAL],
            test=edges[:, split == TEST],
            train_weight=weight[split == TRAIN],
            item_entity=item_entity,
            entity_entity=entity_entity,
            follows=data[FOLLOWS].edge_index if FOLLOWS in data.edge_types else torch.empty(2, 0, dtype=torch.long),
            item_text=list(data["item"].text),
            entity_text=list(data["entity"].text),
            user_ids=list(data["user"].node_id),
            item_ids=list(data["item"].node_id),
            entity_ids=list(data["entity"].node_id),
            data=data,
            train_rating=rating[split == TRAIN].clone() if rated else None,
            val_rating=rating[split == VAL].clone() if rated else None,
            test_rating=rating[split == TEST].clone() if rated else None,
            train_time=ts[split == TRAIN].clone() if timed else None,
        )

    def matrix(self, pairs: torch.Tensor, weights: torch.Tensor | None = None) -> sp.csr_matrix:
        """A users × items CSR matrix of ``pairs``: 1.0 per pair, however often it occurs (a user who both
        rated and tagged an item interacted with it once), or the sum of its ``weights``."""
        values = np.ones(pairs.shape[1], dtype=np.float32) if weights is None else weights.numpy().astype(np.float32)
        m = sp.csr_matrix((values, (pairs[0].numpy(), pairs[1].numpy())), shape=(self.num_users, self.num_items))
        m.sum_duplicates()
        if weights is None:
            m.data[:] = 1.0
        return m

    @property
    def train_matrix(self) -> sp.csr_matrix:
        return self.matrix(self.train)

    @property
    def seen_matrix(self) -> sp.csr_matrix:
        """Every interaction, of all three splits: what a recommendation leaves out."""
        return self.matrix(torch.cat([self.train, self.val, self.test], dim=1))
