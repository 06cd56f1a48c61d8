"""Explanations of KGRec's recommendations: the paths that connect a user to a recommended item.

For a recommendation of item :math:`i` to user :math:`u`, four kinds of path, each with a weight in
:math:`[0, 1]`. KGRec's score mixes the graph network's (its embeddings) with the neighbourhood channel's,
:math:`s = (1 - \\beta) z(e) + \\beta z(c)`; the first three kinds explain the embeddings' part and their weights
are scaled by :math:`1 - \\beta`, the fourth explains the channel's and its weights by :math:`\\beta` (with
:math:`\\beta = 1`, where validation gave the channel the whole score, only channel paths are given):

- **entity** — :math:`u \\to j \\to e \\leftarrow i`: an item :math:`j` of the user's history shares the
  knowledge entity :math:`e` with :math:`i`. Weight: the KGAT attention :math:`i` pays to
  :math:`(r, e)` (:meth:`KGRecNet.knowledge_attention`), times :math:`i`'s fusion weight on its knowledge part;
  the :math:`j` shown is the user's item with that entity most similar to :math:`i`;
- **item** — :math:`u \\to j`, with :math:`j` close to :math:`i` in the model's item space (the collaborative
  and text signal). Weight: the cosine of their final embeddings, clipped at 0;
- **social** — :math:`u \\to v \\to i`: a user :math:`u` follows interacted with :math:`i`. Weight: the cosine of
  the two users' embeddings, clipped at 0;
- **channel** — :math:`u \\to j \\to i`: an item :math:`j` of the user's history that the channel scores
  :math:`i` from. The channel's score is linear in the user's items, :math:`c_{ui} = \\sum_j x_{uj} B_{ji}`
  (EASE's :math:`B`, ItemKNN's similarities; ``contributions`` of either), so each :math:`j` has an exact
  share of it. Weight: :math:`B_{ji}` over the sum of the positive ones, times :math:`\\beta`. A cold item
  (no interactions) takes its channel score from the items it is placed among, :math:`c_{ui} = \\sum_a w_{ia}
  c_{ua}`, and so its contributions, :math:`\\sum_a w_{ia} B_{ja}`.

With the item's fusion weights (``id``, ``text``, ``kg``) and the channel's share :math:`\\beta` they make the
structured explanation written on each ``RECOMMENDED`` relationship, and one sentence for people: "because you
liked X, which shares “Y” (tag) with it", or, where a channel path weighs more, "because people who liked X, as
you did, also liked it".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kgrec.errors import KgrecError
from kgrec.model.baselines import EASE, ItemKNN
from kgrec.model.data import RecData
from kgrec.model.kgrec_net import PARTS, KGRecNet

MAX_PATHS = 3  # per kind


@dataclass
class Explainer:
    """Explains recommendations of a trained :class:`KGRecNet` on the data it was trained with.

    Args:
        net (KGRecNet): the trained model (after ``attach``).
        data (RecData): its data: ids, text, knowledge and the interactions that count as history.
        relation_index (dict): relation name → the model's relation index (``KGRec.relation_index``).
        item_titles (list of str): a readable name per item (defaults to the item ids).
        entity_names (list of str): a readable name per entity (defaults to the entity ids).
        channel (EASE or ItemKNN): KGRec's neighbourhood channel, fitted on ``data`` (``KGRec.knn``), or None.
        share (float): the channel's share :math:`\\beta` of the score (``KGRec.beta``; 0 without a channel).
    """

    net: KGRecNet
    data: RecData
    relation_index: dict[str, int] | None = None
    item_titles: list[str] | None = None
    entity_names: list[str] | None = None
    channel: EASE | ItemKNN | None = None
    share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0 or (self.share and self.channel is None):
            raise KgrecError(f"'share' (got {self.share}) must be in [0, 1], and 0 without a channel")
        d = self.data
        self.item_titles = self.item_titles or list(d.item_ids)
        self.entity_names = self.entity_names or list(d.entity_ids)
        users, items = self.net.embeddings()
        self.users = F.normalize(users, dim=1)
        self.items = F.normalize(items, dim=1)
        self.fusion = self.net.fusion_weights()
        cold_map = self.net.cold_map  # set by embeddings(): the cold items' anchors and weights
        self.placed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if cold_map is not None:
            for row, item in enumerate(cold_map[0].tolist()):
                self.placed[item] = (cold_map[1][row].numpy(), cold_map[2][row].double().numpy())
        history = torch.cat([d.train, d.val, d.test], dim=1)
        self.history: dict[int, list[int]] = defaultdict(list)
        for u, i in zip(history[0].tolist(), history[1].tolist()):
            self.history[u].append(i)
        self.follows: dict[int, list[int]] = defaultdict(list)
        for u, v in zip(d.follows[0].tolist(), d.follows[1].tolist()):
            self.follows[u].append(v)
        self.item_sets = {u: set(items) for u, items in self.history.items()}
        # item -> [(entity, relation name, attention)] and entity -> items
        attention = self.net.knowledge_attention()
        names = {k: name for name, k in (self.relation_index or {}).items()}
        self.links: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
        self.items_of_entity: dict[int, set[int]] = defaultdict(set)
        for item, rel, ent, a in zip(self.net.kg_item.tolist(), self.net.kg_relation.tolist(),
                                     self.net.kg_entity.tolist(), attention.tolist()):
            self.links[item].append((ent, names.get(rel, str(rel)), a))
            self.items_of_entity[ent].add(item)

    def explain(self, user: int, item: int) -> dict[str, Any]:
        """The structured explanation of recommending ``item`` to ``user`` (indices)."""
        return self.explain_all(user, [item])[0]

    def explain_all(self, user: int, items: list[int]) -> list[dict[str, Any]]:
        """:meth:`explain` of each of ``items`` for ``user``; the channel's contributions to all of them come
        from one product (a user's top-k at once)."""
        history, added = self._channel_added(user, items) if self.share > 0.0 and items else (None, {})
        out = []
        for item in items:
            paths = []
            if self.share < 1.0:
                paths = self._entity_paths(user, item) + self._item_paths(user, item) + self._social_paths(user, item)
                for path in paths:
                    path["weight"] = round(path["weight"] * (1.0 - self.share), 4)
            if self.share > 0.0:
                paths += self._channel_paths(history, added[item])
            fusion = {part: round(float(w), 4) for part, w in zip(PARTS, self.fusion[item].tolist())}
            out.append({"text": self.sentence(paths), "fusion": fusion, "channel_share": round(self.share, 4),
                        "paths": paths})
        return out

    def _channel_added(self, user: int, items: list[int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """The user's history items and, per item, what each adds to the channel's score of it ([H]; a cold
        item's through the items it is placed among)."""
        spans = [self.placed.get(item, (np.array([item]), np.ones(1))) for item in items]
        history, parts = self.channel.contributions(user, np.concatenate([anchors for anchors, _ in spans]))
        added, start = {}, 0
        for item, (anchors, weights) in zip(items, spans):
            added[item] = parts[:, start:start + anchors.size] @ weights
            start += anchors.size
        return history, added

    def _channel_paths(self, history: np.ndarray, added: np.ndarray) -> list[dict[str, Any]]:
        positive = np.clip(added, 0.0, None)
        if not positive.sum() > 0:
            return []
        order = np.argsort(-positive, kind="stable")[:MAX_PATHS]
        return [{"kind": "channel", "via_item": self.data.item_ids[history[k]],
                 "via_item_title": self.item_titles[history[k]],
                 "weight": round(float(self.share * positive[k] / positive.sum()), 4)}
                for k in order if positive[k] > 0]

    def _entity_paths(self, user: int, item: int) -> list[dict[str, Any]]:
        mine = self.item_sets.get(user, set())
        kg_share = float(self.fusion[item, 2])
        found, links = [], []
        for entity, relation, attention in self.links.get(item, ()):
            shared = (self.items_of_entity[entity] & mine) - {item}
            if shared:
                links.append((entity, relation, attention, shared))
        if not links:
            return []
        candidates = sorted(set().union(*(shared for *_, shared in links)))
        similarity = dict(zip(candidates, (self.items[candidates] @ self.items[item]).tolist()))  # one product
        for entity, relation, attention, shared in links:
            via = max(shared, key=similarity.__getitem__)
            found.append({"kind": "entity", "via_item": self.data.item_ids[via], "via_item_title": self.item_titles[via],
                          "relation": relation, "entity": self.data.entity_ids[entity],
                          "entity_name": self.entity_names[entity], "weight": round(attention * kg_share, 4)})
        return sorted(found, key=lambda p: -p["weight"])[:MAX_PATHS]

    def _item_paths(self, user: int, item: int) -> list[dict[str, Any]]:
        mine = [j for j in self.history.get(user, ()) if j != item]
        if not mine:
            return []
        sims = (self.items[mine] @ self.items[item]).clamp(min=0)
        best = torch.topk(sims, min(MAX_PATHS, len(mine)))
        return [{"kind": "item", "via_item": self.data.item_ids[mine[k]], "via_item_title": self.item_titles[mine[k]],
                 "weight": round(float(w), 4)} for w, k in zip(best.values.tolist(), best.indices.tolist()) if w > 0]

    def _social_paths(self, user: int, item: int) -> list[dict[str, Any]]:
        friends = [v for v in self.follows.get(user, ()) if item in self.item_sets.get(v, ())]
        if not friends:
            return []
        sims = (self.users[friends] @ self.users[user]).clamp(min=0)
        order = np.argsort(-sims.numpy())[:MAX_PATHS]
        return [{"kind": "social", "via_user": self.data.user_ids[friends[k]], "weight": round(float(sims[k]), 4)}
                for k in order]

    @staticmethod
    def sentence(paths: list[dict[str, Any]]) -> str:
        """One sentence from the strongest path of each kind present."""
        by_kind = {}
        for p in paths:
            if p["kind"] not in by_kind or p["weight"] > by_kind[p["kind"]]["weight"]:
                by_kind[p["kind"]] = p
        parts = []
        main = by_kind.get("entity") or by_kind.get("item")
        if "channel" in by_kind and (main is None or by_kind["channel"]["weight"] > main["weight"]):
            main = by_kind["channel"]
        if main is not None and main["kind"] == "entity":
            parts.append(f"you liked {main['via_item_title']}, which shares “{main['entity_name']}” ({main['relation']}) with it")
        elif main is not None and main["kind"] == "item":
            parts.append(f"you liked {main['via_item_title']}")
        elif main is not None:
            parts.append(f"people who liked {main['via_item_title']}, as you did, also liked it")
        if "social" in by_kind:
            parts.append(f"{by_kind['social']['via_user']}, whom you follow, liked it")
        return ("because " + " and ".join(parts)) if parts else "popular with users like you"
