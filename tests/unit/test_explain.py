"""Explanations on a tiny graph: the paths found, their weights and the sentence."""

from __future__ import annotations

import torch

from kgrec.model.data import RecData
from kgrec.model.explain import Explainer
from kgrec.model.kgrec_net import KGRecConfig, KGRecNet


def test_paths_of_each_kind_and_the_sentence() -> None:
    # user 0 liked item 0; item 0 and item 2 share entity 0 (genre); user 0 follows user 1, who liked item 2
    train = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 2, 3, 3]])
    data = RecData(3, 4, 2, train, torch.empty(2, 0, dtype=torch.long), torch.empty(2, 0, dtype=torch.long),
                   torch.ones(5), item_entity={"genre": torch.tensor([[0, 2, 3], [0, 0, 1]])},
                   follows=torch.tensor([[0], [1]]), user_ids=["u0", "u1", "u2"], item_ids=["i0", "i1", "i2", "i3"],
                   entity_ids=["g:jazz", "g:rock"])
    torch.manual_seed(0)
    net = KGRecNet(3, 4, 2, 1, None, None, KGRecConfig(dim=8, num_layers=1))
    net.attach(data, {"genre": 0})
    net.eval()
    explainer = Explainer(net, data, {"genre": 0}, ["Blue Train", "Kind of Blue", "Giant Steps", "Nevermind"], ["Jazz", "Rock"])
    out = explainer.explain(0, 2)
    kinds = {p["kind"] for p in out["paths"]}
    assert kinds >= {"entity", "social"}
    entity = next(p for p in out["paths"] if p["kind"] == "entity")
    assert (entity["via_item"], entity["entity"], entity["relation"]) == ("i0", "g:jazz", "genre")
    assert 0 <= entity["weight"] <= 1
    assert next(p for p in out["paths"] if p["kind"] == "social")["via_user"] == "u1"
    assert abs(sum(out["fusion"].values()) - 1) < 1e-3
    assert out["text"] == "because you liked Blue Train, which shares “Jazz” (genre) with it and u1, whom you follow, liked it"
    assert explainer.explain(2, 0)["paths"] == [p for p in explainer.explain(2, 0)["paths"] if p["kind"] != "social"]
