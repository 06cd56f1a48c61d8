"""Explanations on a tiny graph: the paths found, their weights and the sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.model.baselines import EASE
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


def channel_setup(share: float):
    """Five users, six items (item 5 has a tag but no interactions: cold), an EASE channel on the interactions."""
    train = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 3, 3, 4], [0, 1, 2, 0, 3, 1, 3, 2, 4, 4]])
    data = RecData(5, 6, 1, train, torch.empty(2, 0, dtype=torch.long), torch.empty(2, 0, dtype=torch.long),
                   torch.ones(train.shape[1]), item_entity={"genre": torch.tensor([[0, 3, 5], [0, 0, 0]])},
                   user_ids=[f"u{k}" for k in range(5)], item_ids=[f"i{k}" for k in range(6)], entity_ids=["g"])
    torch.manual_seed(0)
    net = KGRecNet(5, 6, 1, 1, torch.randn(6, 4), torch.randn(1, 4), KGRecConfig(dim=8, num_layers=1))
    net.attach(data, {"genre": 0})
    net.eval()
    channel = EASE(lambdas=(0.5,)).fit(data)
    return data, net, channel, Explainer(net, data, {"genre": 0}, channel=channel, share=share)


def test_channel_paths_are_the_history_items_the_channel_scores_from() -> None:
    data, net, channel, explainer = channel_setup(share=1.0)
    user, item = 0, 3  # u0 has items 0, 1, 2
    out = explainer.explain(user, item)
    assert out["channel_share"] == 1.0 and {p["kind"] for p in out["paths"]} == {"channel"}  # the embeddings' part is 0
    x = data.train_matrix.toarray()
    p = np.linalg.inv(x.T @ x + 0.5 * np.eye(6))
    added = (-p / np.diag(p))[[0, 1, 2], item]  # EASE's B_j3 for the user's items (it solved over the users)
    positive = np.clip(added, 0, None)
    expected = [(f"i{j}", round(float(positive[k] / positive.sum()), 4))
                for k, j in sorted(enumerate([0, 1, 2]), key=lambda kj: -positive[kj[0]]) if positive[k] > 0]
    assert [(p["via_item"], p["weight"]) for p in out["paths"]] == expected
    assert sum(p["weight"] for p in out["paths"]) == pytest.approx(1.0, abs=1e-3)
    assert out["text"] == f"because people who liked {expected[0][0]}, as you did, also liked it"
    # half the score: the channel's weights halve and the embeddings' paths come back at half theirs
    _, _, _, half = channel_setup(share=0.5)
    mixed = half.explain(user, item)
    assert [p["weight"] for p in mixed["paths"] if p["kind"] == "channel"] == pytest.approx(
        [w / 2 for _, w in expected], abs=1e-4)
    assert {"entity", "item"} <= {p["kind"] for p in mixed["paths"]}
    with pytest.raises(KgrecError, match="'share'"):
        Explainer(net, data, channel=None, share=0.5)


def test_a_cold_items_channel_paths_come_from_the_items_it_is_placed_among() -> None:
    data, net, channel, explainer = channel_setup(share=1.0)
    cold, anchors, weights = net.cold_map
    assert cold.tolist() == [5]  # no interactions, a tag: placed among the items by content
    user = 1  # u1 has items 0 and 3
    history, parts = channel.contributions(user, anchors[0].numpy())
    added = parts @ weights[0].double().numpy()
    # what the channel scores the cold item (the placement) is what its paths share out
    assert added.sum() == pytest.approx(float(channel.score(torch.tensor([user]))[0, anchors[0]] @ weights[0]), abs=1e-5)
    paths = explainer.explain(user, 5)["paths"]
    # a user's list at once (as the pipeline explains it) is each item explained alone
    assert explainer.explain_all(user, [5, 2, 4]) == [explainer.explain(user, item) for item in (5, 2, 4)]
    assert explainer.explain_all(user, []) == []
    positive = np.clip(added, 0, None)
    assert [p["via_item"] for p in paths] == [f"i{history[k]}" for k in np.argsort(-positive, kind="stable") if positive[k] > 0]
