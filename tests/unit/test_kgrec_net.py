"""KGRecNet on tiny random graphs: shapes, gradients, fusion weights, cold items, ablations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kgrec.errors import KgrecError
from kgrec.model.data import RecData
from kgrec.model.kgrec_net import KGRec, KGRecConfig, KGRecNet, channel_share, hardest_negatives
from kgrec.model.training import TrainConfig

U, I, E, T = 12, 10, 6, 8


def tiny(seed: int = 0, cold: int = 9) -> RecData:
    """12 users, 10 items (item ``cold`` never in training), 6 entities in 2 relations."""
    g = torch.Generator().manual_seed(seed)
    users = torch.arange(U).repeat_interleave(4)
    items = torch.randint(0, I - 1, (U * 4,), generator=g)
    items[items >= cold] += 1  # no training interaction on the cold item
    train = torch.unique(torch.stack([users, items]), dim=1)
    test = torch.tensor([[0, 1, 2], [cold, 3, cold]])
    kg = {"genre": torch.tensor([[0, 1, 2, cold, 3], [0, 0, 1, 1, 2]]), "mood": torch.tensor([[3, 4, cold], [4, 5, 5]])}
    return RecData(U, I, E, train, torch.empty(2, 0, dtype=torch.long), test, torch.ones(train.shape[1]),
                   item_entity=kg, follows=torch.tensor([[0, 1], [1, 2]]))


def net(config: KGRecConfig = KGRecConfig(dim=16, num_layers=2), text: bool = True) -> tuple[KGRecNet, RecData]:
    data = tiny()
    torch.manual_seed(0)
    item_text = torch.randn(I, T)
    item_text[5] = 0  # item 5 has no text
    model = KGRecNet(U, I, E, 2, item_text if text else None, torch.randn(E, T) if text else None, config)
    model.attach(data, {"genre": 0, "mood": 1})
    return model, data


def test_shapes_and_repr() -> None:
    model, _ = net()
    users, items = model()
    assert users.shape == (U, 16) and items.shape == (I, 16)
    assert repr(model) == "KGRecNet(12, 10, 6, dim=16, num_layers=2, parts=['id', 'text', 'kg'])"


def test_gradients_reach_every_part() -> None:
    model, data = net()
    users, items = model()
    (users[data.train[0]] * items[data.train[1]]).sum().backward()
    for name in ("user_emb.weight", "item_emb.weight", "text_mlp.0.weight", "entity_emb.weight",
                 "relation_emb.weight", "att_proj.weight", "value_proj.weight", "fusion_proj.weight", "fusion_query"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_fusion_weights_sum_to_one_over_available_parts() -> None:
    model, _ = net()
    weights = model.fusion_weights()
    assert weights.shape == (I, 3)
    assert torch.allclose(weights.sum(1), torch.ones(I))
    assert weights[9, 0] == 0  # the cold item has no id part
    assert weights[5, 1] == 0  # item 5 has no text
    assert weights[6, 2] == 0 and weights[0, 2] > 0  # item 6 has no facts, item 0 has


def test_cold_item_is_scored_from_text_and_knowledge() -> None:
    model, _ = net()
    _, items = model.embeddings()
    before = items[9].clone()
    with torch.no_grad():
        model.item_emb.weight[9] += 100.0  # its (untrained) id embedding must not matter
    model.train(False)
    _, items = model.embeddings()
    assert torch.isfinite(items[9]).all() and torch.allclose(items[9], before)


@pytest.mark.parametrize("config, parts", [
    (KGRecConfig(dim=8, use_text=False), ["id", "kg"]),
    (KGRecConfig(dim=8, use_kg=False), ["id", "text"]),
    (KGRecConfig(dim=8, use_text=False, use_kg=False, num_layers=1), ["id"]),
])
def test_ablations(config: KGRecConfig, parts: list[str]) -> None:
    model, _ = net(config)
    assert f"parts={parts}" in repr(model)
    weights = model.fusion_weights()
    assert torch.allclose(weights.sum(1), torch.ones(I))
    if "text" not in parts:
        assert (weights[:, 1] == 0).all()
    if "kg" not in parts:
        assert (weights[:, 2] == 0).all()


def test_social_links_change_the_propagation() -> None:
    plain, _ = net(KGRecConfig(dim=8, use_social=False))
    social, _ = net(KGRecConfig(dim=8, use_social=True))
    assert social.adjacency._nnz() == plain.adjacency._nnz() + 4


def test_knowledge_entities_join_the_propagation_graph() -> None:
    plain, data = net(KGRecConfig(dim=8, kg_graph=False))
    joined, _ = net(KGRecConfig(dim=8, kg_graph=True))
    links = {(int(i), int(e)) for name in ("genre", "mood") for i, e in data.item_entity[name].T}
    assert joined.adjacency.shape == (U + I + E, U + I + E)
    assert joined.adjacency._nnz() == plain.adjacency._nnz() + 2 * len(links)
    dense = joined.adjacency.to_dense()
    degree = (dense != 0).sum(1).float()
    item, entity = 3, 2  # a "genre" link
    assert dense[U + item, U + I + entity] == pytest.approx(float((degree[U + item] * degree[U + I + entity]) ** -0.5))
    # the cold item 9 has no interaction but links: only through them do its propagated layers hold anything
    for model, isolated in ((plain, True), (joined, False)):
        users, items = model()
        assert users.shape == (U, 8) and items.shape == (I, 8)
        alone = model.fuse(*model.item_parts())[0][9] / (model.config.num_layers + 1)
        assert torch.allclose(items[9], alone) is isolated


def test_only_entities_linked_to_two_or_more_items_have_an_id_part() -> None:
    # tiny(): entity 0 links items 0 and 1, entity 1 items 2 and 9, entity 5 items 4 and 9 (two relations);
    # entities 2 and 4 link item 3 alone, entity 3 nothing
    model, data = net()
    assert model.entity_has_id.tolist() == [True, True, False, False, False, True]
    z = model._entities()
    text_only = model.text_mlp(model.entity_text)
    assert torch.allclose(z[[2, 3, 4]], text_only[[2, 3, 4]])
    assert not torch.allclose(z[[0, 1, 5]], text_only[[0, 1, 5]])
    assert torch.allclose(model._entities(torch.tensor([4, 0])), z[[4, 0]])  # the sampled path's lookup
    users, items = model()
    (users[data.train[0]] * items[data.train[1]]).sum().backward()
    grad = model.entity_emb.weight.grad.abs().sum(1)
    assert (grad[[2, 3, 4]] == 0).all() and (grad[[0, 1, 5]] > 0).all()
    every, _ = net(KGRecConfig(dim=16, num_layers=2, shared_entity_ids=False))
    assert every.entity_has_id.all()
    assert KGRecConfig.from_saved({"dim": 8}).shared_entity_ids is False  # a checkpoint from before the choice


def test_training_leaves_the_id_rows_of_unshared_entities_at_zero() -> None:
    model = KGRec(torch.randn(I, T), torch.randn(E, T), KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2))
    model.fit(tiny())
    rows = model.net.entity_emb.weight.detach().abs().sum(1)
    assert (rows[[2, 3, 4]] == 0).all() and (rows[[0, 1, 5]] > 0).all()


def test_a_checkpoint_from_before_kg_graph_keeps_propagating_without_entities() -> None:
    saved = KGRecConfig(dim=8).as_dict()
    del saved["kg_graph"]
    assert KGRecConfig.from_saved(saved).kg_graph is False
    assert KGRecConfig.from_saved({**saved, "kg_graph": True}).kg_graph is True
    assert KGRecConfig().neighbourhood_model == "ease"
    assert KGRecConfig.from_saved({"dim": 8}).neighbourhood_model == "itemknn"  # from before the choice
    assert KGRecConfig.from_saved({"dim": 8, "neighbourhood_model": "ease"}).neighbourhood_model == "ease"


def test_the_ease_channel_tries_the_time_kernel_with_use_time_and_keeps_its_weight(monkeypatch) -> None:
    from kgrec.model.baselines import EASE, TIME_WEIGHTS

    data = tiny()
    data.val = data.test
    data.train_time = torch.arange(data.train.shape[1], dtype=torch.float64) * 60.0
    tried: list[tuple] = []
    real_init = EASE.__init__
    monkeypatch.setattr(EASE, "__init__", lambda self, *a, **k: tried.append((k["time_weights"], k["time_scale"]))
                        or real_init(self, *a, **k))
    schedule = TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)
    model = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, time_scale=90.0), schedule).fit(data)
    assert tried == [(TIME_WEIGHTS, 90.0)] and model.channel_time == model.knn.time_weight in TIME_WEIGHTS
    assert model.knn.time_basis == "chosen on validation"
    saved = model.checkpoint()
    assert saved["channel_time"] == model.channel_time and saved["config"]["time_scale"] == 90.0
    no_time = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, use_time=False), schedule).fit(data)
    assert tried[-1][0] == (0.0,) and no_time.channel_time == 0.0
    model.restore_choices({**saved, "channel_time": 2.0}, data, None)  # a checkpoint's weights, not chosen again
    assert tried[-1][0] == (2.0,) and model.knn.time_weight == model.channel_time == 2.0
    assert channel_share(saved) == model.beta and channel_share({**saved, "channel_share": 1.0}) == 1.0
    # a checkpoint from before the share saved the channel's weight w beside the embeddings: it ranks as w / (1 + w)
    assert channel_share({"beta": 1.0}) == 0.5 and channel_share({"beta": 4.0}) == 0.8 and channel_share({}) == 0.0
    model.use_neighbourhood(data, 50.0, 0.0)  # a checkpoint from before the time kernel: none
    assert model.knn.time_weight == 0.0
    assert KGRecConfig.from_saved({"dim": 8}).use_time is False and KGRecConfig().use_time is True
    with pytest.raises(KgrecError, match="'time_scale' \\(got -1\\) must be a positive number of seconds"):
        KGRecConfig(time_scale=-1)


def test_dynamic_negative_sampling_takes_the_candidate_scored_highest() -> None:
    users_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items_emb = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5], [0.0, 0.0]])
    candidates = torch.tensor([[0, 1, 3], [1, 2, 3], [0, 2, 3]])
    # user 0 prefers item 1 (0.8), then 2 (0.5); user 1 prefers item 0 (0.9), then 2 (0.5)
    assert hardest_negatives(users_emb, items_emb, torch.tensor([0, 0, 1]), candidates).tolist() == [1, 1, 0]


def test_dynamic_negative_sampling_changes_training_and_one_candidate_is_plain_bpr() -> None:
    data = tiny()
    losses = {}
    for m in (1, 4):
        model = KGRec(None, None, KGRecConfig(dim=8, negatives=m, neighbourhood=False),
                      TrainConfig(epochs=3, eval_every=1, patience=5)).fit(data)
        losses[m] = [h.loss for h in model.history]
    assert losses[1] != losses[4]
    # harder negatives: a larger loss at the same weights in the first epoch
    assert losses[4][0] > losses[1][0]


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"id_dropout": 1.0}, {"num_layers": -1}, {"negatives": 0},
                                    {"kg_loss": -0.1}, {"kg_loss": float("nan")}, {"kg_batch": 0}])
def test_bad_config(kwargs: dict) -> None:
    with pytest.raises(Exception, match="must be"):
        KGRecConfig(**kwargs)


def _with_net(config: KGRecConfig, weight_decay: float = 0.0) -> KGRec:
    model = KGRec(config=config, train_config=TrainConfig(weight_decay=weight_decay))
    model.net, _ = net(config)
    return model


def test_the_translation_loss_of_zero_embeddings_is_its_weight_times_ln_2() -> None:
    """Every distance 0: each triple's softplus(0 - 0) = ln 2, and no L2 without weight decay."""
    model = _with_net(KGRecConfig(dim=8, kg_loss=0.25, kg_batch=64))
    with torch.no_grad():
        for p in model.net.parameters():
            p.zero_()
    loss = model._kg_triple_loss(torch.Generator().manual_seed(0), torch.device("cpu"))
    assert loss.item() == pytest.approx(0.25 * torch.log(torch.tensor(2.0)).item())


def test_the_translation_loss_by_hand_and_its_gradients() -> None:
    config = KGRecConfig(dim=8, kg_loss=0.5, kg_batch=32)
    model = _with_net(config, weight_decay=1e-2)
    loss = model._kg_triple_loss(torch.Generator().manual_seed(3), torch.device("cpu"))
    g, n = torch.Generator().manual_seed(3), model.net
    t = torch.randint(n.kg_item.numel(), (32,), generator=g)
    neg = torch.randint(E, (32,), generator=g)
    items = n.kg_item[t]
    has_id, has_text = n.item_has_id[items].float()[:, None], n.item_has_text[items].float()[:, None]
    h = (n.item_emb.weight[items] * has_id + n.text_mlp(n.item_text[items]) * has_text) / (has_id + has_text).clamp(min=1)
    r = n.relation_emb.weight[n.kg_relation[t]]
    z, z_neg = n._entities()[n.kg_entity[t]], n._entities()[neg]
    d_pos, d_neg = (h + r - z).pow(2).sum(1), (h + r - z_neg).pow(2).sum(1)
    l2 = (h.pow(2).sum() + r.pow(2).sum() + z.pow(2).sum() + z_neg.pow(2).sum()) / 32
    assert loss.item() == pytest.approx((0.5 * (F.softplus(d_pos - d_neg).mean() + 1e-2 * l2)).item(), rel=1e-5)
    loss.backward()
    for name in ("item_emb.weight", "relation_emb.weight", "entity_emb.weight", "text_mlp.0.weight"):
        grad = dict(n.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_no_translation_loss_when_off_or_without_knowledge() -> None:
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    for config in (KGRecConfig(dim=8, kg_loss=0.0), KGRecConfig(dim=8, use_kg=False)):
        assert _with_net(config)._kg_triple_loss(g, torch.device("cpu")) == 0.0
    assert torch.equal(g.get_state(), state)  # nothing drawn: training is as before the loss existed
    assert KGRecConfig.from_saved({"dim": 8}).kg_loss == 0.0  # a checkpoint from before it trained without it


def test_training_with_the_translation_loss_puts_items_facts_nearer_than_other_entities() -> None:
    data = tiny()
    distances = {}
    for weight in (0.0, 1.0):
        model = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, kg_loss=weight, neighbourhood=False,
                                              shared_entity_ids=False),
                      TrainConfig(epochs=40, batch_size=16, eval_every=40, patience=1, lr=0.02)).fit(data)
        n = model.net
        with torch.no_grad():
            h = n.item_emb.weight[n.kg_item] + n.relation_emb.weight[n.kg_relation]
            d = torch.cdist(h, n._entities())  # [links, entities]
            true = d[torch.arange(n.kg_item.numel()), n.kg_entity]
            distances[weight] = float((true < d.mean(1)).float().mean()), float(true.mean() / d.mean())
    assert distances[1.0][0] == 1.0  # every fact nearer than the average entity
    assert distances[1.0][1] < distances[0.0][1]


def test_fit_and_score() -> None:
    data = tiny()
    model = KGRec(torch.randn(I, T), None, KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=3, batch_size=16, eval_every=1, patience=2))
    model.fit(data)
    scores = model.score(torch.tensor([0, 5]))
    assert scores.shape == (2, I) and torch.isfinite(scores).all()
    assert len(model.history) == 3


@pytest.mark.parametrize("placement", ["content", "text"])
def test_a_new_item_embeds_like_a_trained_cold_item(placement: str) -> None:
    """new_item_embeddings (the API's cold start) with the graph's anchors gives a cold item of the graph
    exactly its embedding: placed among the anchors by its content, or by its text (the nearest anchors
    with text by the cosine of the frozen text vectors)."""
    model, data = net()
    model.set_placement(placement)
    model.eval()
    _, items = model.embeddings()
    cold = 9
    if placement == "text":
        anchors = torch.nonzero(model.item_has_id & model.item_connected & model.item_has_text).flatten()
        cosine = F.normalize(model.item_text[anchors], dim=1) @ F.normalize(model.item_text[cold], dim=0)
        assert model.cold_map[0].tolist() == [cold]
        found, weights = model.cold_map[1][0], model.cold_map[2][0]
        assert set(found[weights > 0].tolist()) == set(anchors.tolist())  # fewer anchors than k: all, padded
        assert torch.allclose(weights[: len(anchors)], torch.softmax(cosine.sort(descending=True).values / 0.1, 0))
    links = [(k, r, e) for r, (name, edges) in enumerate(sorted(data.item_entity.items()))
             for k, e in zip(edges[0].tolist(), edges[1].tolist()) if k == cold]
    kg = torch.tensor([[0 for _ in links], [r for _, r, _ in links], [e for _, _, e in links]])
    with torch.no_grad():
        new, alpha = model.new_item_embeddings(model.item_text[cold : cold + 1], kg[0], kg[1], kg[2], 1,
                                               model.cold_anchors())
    assert torch.allclose(new[0], items[cold], atol=1e-6)
    assert alpha[0, 0] == 0 and alpha.sum().item() == pytest.approx(1.0)


def test_item_embedder_loads_a_checkpoint_and_ignores_unknown_links(tmp_path) -> None:
    from kgrec.model.inductive import ItemEmbedder

    model, data = net()
    torch.save({"state_dict": model.state_dict(), "config": model.config.as_dict(), "relation_index": {"genre": 0, "mood": 1},
                "entity_ids": [f"e{k}" for k in range(E)], "text_model": "m", "placement": "text"}, tmp_path / "kgrec.pt")
    embedder = ItemEmbedder.load(tmp_path)
    assert embedder.net.placement == "text"
    text = torch.randn(1, T).repeat(2, 1).numpy()  # the same text: only the links differ
    known = embedder.embed(text, [[("genre", "e1")], [("genre", "e1"), ("nope", "e1"), ("mood", "unknown")]])
    assert known.shape == (2, 16) and abs(known[0] - known[1]).max() < 1e-6  # unknown links carry nothing
    with pytest.raises(Exception, match="dimensions"):
        embedder.embed(torch.randn(1, T + 1).numpy(), [[]])


def test_neighbourhood_channel_is_weighted_on_validation() -> None:
    data = tiny()
    data.val = data.test
    model = KGRec(torch.randn(I, T), torch.randn(E, T), KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)).fit(data)
    from kgrec.model.kgrec_net import BETAS

    assert model.knn is not None and model.beta in BETAS and BETAS[0] == 0.0 and BETAS[-1] == 1.0  # either part alone
    chosen, scores = model.beta, {}
    model.gamma = 0.0  # chosen after the share, as it was not yet when the share was chosen
    assert model.lift == 0.0  # 3 validation pairs: too few on cold items for a shift
    for beta in BETAS:
        model.beta = beta
        scores[beta] = model._validation_ndcg(data)
    assert chosen == max(BETAS, key=lambda b: (scores[b], -b))
    scores = model.score(torch.arange(U))
    assert scores.shape == (U, I) and torch.isfinite(scores).all()
    off = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, neighbourhood=False),
                TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)).fit(data)
    assert off.knn is None and off.beta == 0.0


def test_an_ease_channel_chooses_its_weight_on_validation_and_keeps_it_when_served(monkeypatch) -> None:
    from kgrec.model.baselines import EASE

    data, text = three_taste_blocks()
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1, neighbourhood_model="ease"),
                  TrainConfig(epochs=2, batch_size=64, eval_every=1, patience=2)).fit(data)
    assert isinstance(model.knn, EASE) and model.channel_lambda == model.knn.lam in EASE().lambdas
    chosen = model.channel_lambda
    fits: list[tuple] = []
    real_fit = EASE.fit
    monkeypatch.setattr(EASE, "fit", lambda self, d: fits.append(self.lambdas) or real_fit(self, d))
    model.serve_on(data)  # refitted on the serving data with the weight it chose, not chosen again
    assert fits == [(chosen,)] and model.knn.lam == chosen
    loaded = KGRec(config=KGRecConfig(neighbourhood_model="ease"))
    loaded.use_neighbourhood(data, 1234.0)  # a checkpoint's weight
    assert loaded.knn.lam == 1234.0 and loaded.channel_lambda == 1234.0
    assert KGRec(config=KGRecConfig(neighbourhood=False)).use_neighbourhood(data) is None
    with pytest.raises(KgrecError, match="'neighbourhood_model' \\(got 'knn'\\) must be one of itemknn, ease"):
        KGRecConfig(neighbourhood_model="knn")
    monkeypatch.setattr("kgrec.model.baselines.EASE_MAX_SIDE", 44)  # 45 users, 60 items: refused before training
    with pytest.raises(KgrecError, match="refuses more than 44 on both sides: choose neighbourhood_model 'itemknn'"):
        KGRec(text, None, KGRecConfig(dim=8, num_layers=1), TrainConfig(epochs=10**6)).fit(data)


def test_the_ease_channel_weighs_knowledge_rows_only_with_the_knowledge_graph(monkeypatch) -> None:
    from kgrec.model.baselines import EASE, KNOWLEDGE_WEIGHTS

    data = tiny()
    data.val = data.test
    tried: list[tuple] = []
    real_init = EASE.__init__
    monkeypatch.setattr(EASE, "__init__", lambda self, *a, **k: tried.append(k["knowledge_weights"]) or real_init(self, *a, **k))
    schedule = TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)
    model = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, neighbourhood_model="ease"), schedule).fit(data)
    assert tried == [KNOWLEDGE_WEIGHTS] and model.channel_knowledge == model.knn.knowledge_weight in KNOWLEDGE_WEIGHTS
    no_kg = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, use_kg=False, neighbourhood_model="ease"), schedule).fit(data)
    assert tried[-1] == (0.0,) and no_kg.channel_knowledge == 0.0
    model.use_neighbourhood(data, 50.0, 2.0)  # a checkpoint's weights
    assert (model.knn.lam, model.knn.knowledge_weight, model.channel_lambda, model.channel_knowledge) == (50.0, 2.0, 50.0, 2.0)
    model.use_neighbourhood(data, 50.0)  # a checkpoint from before the knowledge rows: none
    assert model.knn.knowledge_weight == 0.0


def test_cold_items_are_placed_among_the_anchors_by_content() -> None:
    model, _ = net()
    model.eval()
    _, items = model.embeddings()
    cold, neighbours, weights = model.cold_map
    assert cold.tolist() == [9]  # the one item with content and no training interaction
    anchors = model.item_has_id & model.item_connected
    assert anchors[neighbours].all() and not anchors[9]
    assert torch.allclose(weights.sum(1), torch.ones(1)) and (weights[:, :-1] >= weights[:, 1:]).all()
    assert torch.allclose(items[9], (weights[0].unsqueeze(-1) * items[neighbours[0]]).sum(0), atol=1e-6)
    # the nearest anchor is the one whose content is most like the cold item's
    content, _ = model.content()
    cos = torch.nn.functional.cosine_similarity(content[9].unsqueeze(0), content[anchors], dim=1)
    assert torch.nonzero(anchors).flatten()[cos.argmax()] == neighbours[0, 0]


def test_without_anchors_a_new_item_keeps_its_content_over_the_layer_count() -> None:
    model, _ = net()
    model.eval()
    text = torch.randn(2, T)
    text[1] = 0  # the second has neither text nor links
    none = torch.empty(0, dtype=torch.long)
    with torch.no_grad():
        alone, alpha = model.new_item_embeddings(text, none, none, none, 2)
        placed, _ = model.new_item_embeddings(text, none, none, none, 2, model.cold_anchors())
        content = model.text_mlp(text[:1])
    assert torch.allclose(alone[0], content[0] / 3, atol=1e-6) and alpha[0, 1] == 1
    assert not torch.allclose(placed[0], alone[0]) and torch.equal(placed[1], alone[1])


def test_the_neighbourhood_channel_places_cold_items_too() -> None:
    from kgrec.model.kgrec_net import _standardise

    data = tiny()
    data.val = data.test
    model = KGRec(torch.randn(I, T), torch.randn(E, T), KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)).fit(data)
    model.beta, model.gamma, model.lift = 0.25, 0.0, 0.0
    users = torch.arange(U)
    u, items = model.net.embeddings()
    cold, neighbours, weights = model.net.cold_map
    own = model.knn.score(users).float()
    # the cold item's channel score (EASE's, from its knowledge rows) is replaced by its placement's
    knn = own.clone()
    knn[:, cold] = (knn[:, neighbours[0]] * weights[0]).sum(1, keepdim=True)
    assert not torch.allclose(knn[:, cold], own[:, cold])
    expected = 0.75 * _standardise(u @ items.T) + 0.25 * _standardise(knn)
    assert torch.allclose(model.score(users), expected, atol=1e-5)
    model.beta = 1.0  # the channel alone: the embeddings only place the cold items
    assert torch.allclose(model.score(users), _standardise(knn), atol=1e-5)


def test_a_device_that_is_not_one_is_refused() -> None:
    from kgrec.errors import KgrecError

    with pytest.raises(KgrecError, match="'device'"):
        TrainConfig(device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(KgrecError, match="no CUDA device"):
            _ = TrainConfig(device="cuda").torch_device


def test_cold_items_text_channel_reorders_them_and_keeps_their_mean_and_spread() -> None:
    """Only the cold items' scores move with gamma; per user they keep their mean and standard deviation
    (no lift as a group) and equal mean + std · z(z(s) + gamma · z(text)); a large gamma orders them as
    the text does."""
    from kgrec.model.kgrec_net import GAMMAS, _standardise

    data = tiny()
    keep = ~torch.isin(data.train[1], torch.tensor([7, 8]))  # items 7, 8 and 9: no training interaction
    data.train, data.train_weight = data.train[:, keep], data.train_weight[keep]
    model = KGRec(torch.randn(I, T, generator=torch.Generator().manual_seed(3)), None, KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=2, batch_size=16, eval_every=1, patience=2)).fit(data)
    assert model.gamma in GAMMAS and model.text is not None
    users = torch.tensor([0, 3, 7])
    model.gamma = 0.0
    base = model.score(users)
    model.gamma = 2.0
    moved = model.score(users)
    cold = model.net.cold_map[0]
    assert cold.tolist() == [7, 8, 9]
    warm = torch.ones(I, dtype=torch.bool)
    warm[cold] = False
    assert torch.equal(moved[:, warm], base[:, warm])
    b, m = base[:, cold], moved[:, cold]
    assert not torch.allclose(m, b, atol=1e-4)
    assert torch.allclose(m.mean(1), b.mean(1), atol=1e-5) and torch.allclose(m.std(1), b.std(1), atol=1e-5)
    text = model.text.score(users)[:, cold]
    expected = b.mean(1, keepdim=True) + b.std(1, keepdim=True) * _standardise(_standardise(b) + 2.0 * _standardise(text))
    assert torch.allclose(m, expected, atol=1e-5)
    model.gamma = 1e6
    assert torch.equal(model.score(users)[:, cold].argsort(1), text.argsort(1))
    no_text = KGRec(None, None, KGRecConfig(dim=8, num_layers=1, use_text=False),
                    TrainConfig(epochs=1, batch_size=16, eval_every=1, patience=1)).fit(data)
    assert no_text.text is None and no_text.gamma == 0.0


def three_taste_blocks(cold_per_block: int = 0) -> tuple[RecData, torch.Tensor]:
    """45 users in three taste clusters, each with its own block of 20 items; an item's text names its
    block. The last ``cold_per_block`` items of each block never appear in training: they are only in
    validation, two per user."""
    import numpy as np

    rng = np.random.default_rng(0)
    blocks = [range(b * 20, b * 20 + 20) for b in range(3)]
    train, val = [], []
    for u in range(45):
        block = list(blocks[u // 15])
        warm, cold = block[: 20 - cold_per_block], block[20 - cold_per_block:]
        items = rng.choice(warm, size=10, replace=False).tolist()
        train += [(u, i) for i in items[:8]]
        val += [(u, i) for i in items[8:]] if not cold else [(u, i) for i in rng.choice(cold, size=2, replace=False).tolist()]
    t = lambda pairs: torch.tensor(pairs).t()  # noqa: E731
    data = RecData(45, 60, 0, t(train), t(val), t(val[:3]), torch.ones(len(train)))
    text = torch.zeros(60, 3)
    text[torch.arange(60), torch.arange(60) // 20] = 1.0
    text += 0.05 * torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    return data, text


def test_gamma_is_chosen_on_the_real_cold_items_when_validation_has_enough_pairs_on_them() -> None:
    """Items never trained on but with validation interactions (90 pairs): gamma is the one of GAMMAS whose
    served scores rank them best among themselves for their validation users (no leak: they were never
    trained on)."""
    from kgrec.model.evaluate import evaluate_cold_start
    from kgrec.model.kgrec_net import GAMMAS

    data, text = three_taste_blocks(cold_per_block=5)
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1, neighbourhood=False),
                  TrainConfig(epochs=3, batch_size=64, eval_every=1, patience=3)).fit(data)
    cold = model.net.cold_map[0]
    assert cold.numel() == 15
    assert model.gamma_basis.startswith("90 validation pairs on cold items, placed by ")
    assert model.net.placement in ("content", "text")
    as_test = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "test": data.val,
                         "val": data.val[:, :0]})
    chosen, scores = model.gamma, {}
    for gamma in GAMMAS:
        model.gamma = gamma
        scores[gamma] = evaluate_cold_start(model, as_test, cold, ks=(20,), exclude=("train",))["ndcg@20"]
    assert len(set(scores.values())) > 1  # gamma matters here, so the choice is a real one
    assert chosen == max(GAMMAS, key=lambda g: (scores[g], -g))


def test_gamma_is_chosen_on_pseudo_cold_items_where_text_is_the_signal() -> None:
    """With no cold items in validation, gamma falls back to pseudo-cold items (three taste blocks,
    untrained collaborative part: only text can place them, so gamma > 0); with no validation
    interactions it stays 0."""
    data, text = three_taste_blocks()
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1, neighbourhood=False),
                  TrainConfig(epochs=1, lr=1e-9, batch_size=64, eval_every=1, patience=1)).fit(data)
    assert model.gamma > 0 and "pseudo-cold items, placed by" in model.gamma_basis
    empty = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "val": data.val[:, :0]})
    assert KGRec(text, None, KGRecConfig(dim=8, num_layers=1, neighbourhood=False),
                 TrainConfig(epochs=1, batch_size=64, eval_every=1, patience=1)).fit(empty).gamma == 0.0


def test_the_cold_lift_shifts_only_the_cold_items_and_is_chosen_on_the_whole_catalogue(tmp_path) -> None:
    """Every validation pair is on a cold item (three taste blocks, 5 cold items each): the lift δ is the one
    of LIFTS whose served scores rank the whole catalogue best on validation, here above 0; it adds δ to the
    cold items' standardised scores and leaves the warm ones alone; a checkpoint keeps it."""
    from kgrec.model.evaluate import evaluate
    from kgrec.model.kgrec_net import LIFTS
    from kgrec.pipeline import _load, _save

    data, text = three_taste_blocks(cold_per_block=5)
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=3, batch_size=64, eval_every=1, patience=3)).fit(data)
    cold = model.net.cold_map[0]
    assert model.lift_basis == "chosen on the whole catalogue's validation (90 pairs on cold items)"
    chosen, scores = model.lift, {}
    for lift in LIFTS:
        model.lift = lift
        scores[lift] = evaluate(model, data, "val", ks=(20,))["ndcg@20"]
    assert len(set(scores.values())) > 1 and chosen == max(LIFTS, key=lambda x: (scores[x], -abs(x))) and chosen > 0
    users = torch.arange(45)
    model.lift = 0.0
    base = model.score(users)
    model.lift = 1.5
    lifted = model.score(users)
    warm = torch.ones(60, dtype=torch.bool)
    warm[cold] = False
    assert torch.equal(lifted[:, warm], base[:, warm])
    assert torch.allclose(lifted[:, cold], base[:, cold] + 1.5)
    data.user_ids, data.item_ids = [f"u{k}" for k in range(45)], [f"i{k}" for k in range(60)]
    loaded = _load(_save(model, tmp_path, data, "a text model", {}), data, text)
    assert loaded.lift == 1.5 and torch.allclose(loaded.score(users), lifted, atol=1e-5)


def test_the_share_and_the_cold_lift_are_chosen_together(monkeypatch) -> None:
    """Both move the cold items against the warm ones, so they are chosen as a pair on the whole catalogue's
    validation (ties: the smaller shift, then the smaller share), with shifts down as well as up; the trial
    scores that choice compares are the served ones."""
    from kgrec.model.kgrec_net import BETAS, LIFTS, _MixTrial

    data, text = three_taste_blocks(cold_per_block=5)
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1),
                  TrainConfig(epochs=3, batch_size=64, eval_every=1, patience=3)).fit(data)
    assert min(LIFTS) < 0 < max(LIFTS) and 0.0 in LIFTS
    model.gamma = 0.0
    model._choose_mix(data)
    chosen, scores = (model.beta, model.lift), {}
    for beta in BETAS:
        for lift in LIFTS:
            model.beta, model.lift = beta, lift
            scores[beta, lift] = model._validation_ndcg(data)
    assert len(set(scores.values())) > 1
    assert chosen == max(scores, key=lambda key: (scores[key], -abs(key[1]), -key[0]))
    trial, users = _MixTrial(model), torch.arange(45)
    model.beta, model.lift = trial.beta, trial.lift = 0.5, -1.0
    assert torch.allclose(trial.score(users), model.score(users), atol=1e-5)


def test_no_cold_lift_without_enough_validation_pairs_on_cold_items_or_when_off() -> None:
    schedule = TrainConfig(epochs=1, batch_size=64, eval_every=1, patience=1)
    data, text = three_taste_blocks()  # no cold items in validation
    model = KGRec(text, None, KGRecConfig(dim=8, num_layers=1), schedule).fit(data)
    assert model.lift == 0.0 and model.lift_basis == "0 validation pairs on cold items: too few to choose on"
    cold_data, _ = three_taste_blocks(cold_per_block=5)
    off = KGRec(text, None, KGRecConfig(dim=8, num_layers=1, cold_lift=False), schedule).fit(cold_data)
    assert off.lift == 0.0 and off.lift_basis == ""
    assert KGRecConfig.from_saved({"dim": 8}).cold_lift is False  # a checkpoint from before the lift


@pytest.mark.parametrize("config", [KGRecConfig(dim=8), KGRecConfig(dim=8, kg_graph=False, use_social=True)])
def test_propagation_gradients_are_torchs_and_the_graph_is_symmetric(config: KGRecConfig) -> None:
    from kgrec.model.kgrec_net import propagate

    model, _ = net(config)
    a = model.adjacency
    assert torch.equal(a.to_dense(), a.to_dense().T)  # so it is its own transpose in propagate()
    x = torch.randn(a.shape[0], 4, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    (propagate(a, a, x) ** 2).sum().backward()
    (torch.sparse.mm(a, y) ** 2).sum().backward()
    assert torch.allclose(x.grad, y.grad, atol=1e-6)
    m = torch.randn(5, 3).relu().to_sparse()  # not square, not symmetric: the transpose carries the gradient
    x = torch.randn(3, 2, requires_grad=True)
    out = propagate(m, m.t().coalesce(), x)
    assert torch.allclose(out, m.to_dense() @ x)
    out.sum().backward()
    assert torch.allclose(x.grad, m.to_dense().T @ torch.ones(5, 2))
