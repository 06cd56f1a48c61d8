"""``kgrec refresh``: pick up knowledge engineers' edits without retraining.

After hand edits — new or removed entity links, new items, corrected text, new interactions, deletions —
refresh takes the active run's trained weights and recomputes everything the edits touch:

1. item text whose hash changed is encoded again (``Item.text_embedding``; the encoder's cache keeps the rest);
2. the graph is exported again; the trained model is **transplanted** onto it: users, items, entities and
   relations keep their trained parameters by id; new items get no id part (they are embedded from text and
   knowledge, as in cold start), new entities their text only, new users their interactions only; links of
   relations the model never learnt are left out; the collaborative propagation runs over the current
   interactions;
3. every user with an interaction is scored again (a user with none gets no list: the API serves popular
   items), and the result is written as a **new run** (``params.refresh_of`` names the
   run it came from) and activated in one step — readers switch from one complete run to the other.

What changed is reported: texts re-encoded, knowledge links added and removed, links left out (of relations
the model never learnt), items added and removed, items whose embedding moved, and users whose top-K changed.
Full retraining stays ``kgrec run``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label
from kgrec.loaders import writeback
from kgrec.loaders.export import export_subgraph
from kgrec.model.data import RecData
from kgrec.model.harness import text_vectors
from kgrec.model.inductive import CHECKPOINT, read_checkpoint
from kgrec.model.kgrec_net import KGRec, KGRecConfig, KGRecNet
from kgrec.model.text import TextEncoder
from kgrec.model.text_graph import encode_items_in_graph
from kgrec.model.training import TrainConfig
from kgrec.pipeline import _names, _save, _titles, recommend, with_history

log = logging.getLogger(__name__)
MOVED = 1e-6  # relative change of an item's embedding that counts as "changed"


@dataclass
class RefreshResult:
    run_id: str
    refreshed_from: str
    changes: dict[str, int] = field(default_factory=dict)
    changed_users: list[str] = field(default_factory=list)
    changed_items: list[str] = field(default_factory=list)


def refresh(graph: Graph, settings: Settings, *, run_id: str | None = None, top_k: int | None = None,
            progress: bool = False, say: Callable[[str], None] = log.info) -> RefreshResult:
    """Recompute embeddings and recommendations of the active run over the graph as it is now."""
    active = graph.read(q.API_ACTIVE_RUN)
    if not active:
        raise KgrecError("there is no active run to refresh: train one with `kgrec run`")
    base = active[0]
    if not base["checkpoint"] or not (Path(base["checkpoint"]) / CHECKPOINT).is_file():
        raise KgrecError(f"the active run {base['id']!r} has no checkpoint on this machine "
                         f"({base['checkpoint']}); refresh needs it — or retrain with `kgrec run`")
    checkpoint = read_checkpoint(Path(base["checkpoint"]) / CHECKPOINT)
    top_k = top_k or base["top_k"] or 50
    run_id = writeback.check_new_run_id(
        graph, run_id or "refresh-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    )

    encoder = TextEncoder(settings.text_model, settings.data_dir / "text_cache", progress=progress)
    say("Encoding changed item text ...")
    text_counts = encode_items_in_graph(graph, encoder)
    say("Exporting the graph ...")
    export = export_subgraph(graph, split=None, progress=progress)
    data = RecData.from_hetero(export.data, all_train=True)
    items_text, entities_text = text_vectors(data, encoder)
    model = transplant(checkpoint, data, items_text, entities_text)
    changes = {"texts_reencoded": int(text_counts["encoded"]), **_diff_knowledge(checkpoint, data),
               "items_added": len(set(data.item_ids) - set(checkpoint["item_ids"])),
               "items_removed": len(set(checkpoint["item_ids"]) - set(data.item_ids)),
               "users_added": len(set(data.user_ids) - set(checkpoint["user_ids"]))}

    say("Scoring every user with the transplanted model ...")
    recommendations = recommend(model, data, top_k, _titles(export.data), _names(export.data))
    users, items = model.net.embeddings()
    changed_items = _moved_items(graph, base, data, items.numpy())
    changed_users = _changed_lists(graph, base["id"], recommendations)
    changes |= {"items_changed": len(changed_items), "users_changed": len(changed_users)}

    say(f"Writing run {run_id} (refresh of {base['id']}) ...")
    run_dir = settings.data_dir / "runs" / run_id
    _save(model, run_dir, data, checkpoint.get("text_model", ""), {})
    run = writeback.start_run(graph, run_id, {"refresh_of": base["id"], "top_k": top_k, "changes": changes})
    graph.write(q.SET_RUN_CHECKPOINT, run=run_id, checkpoint=str(run_dir), top_k=top_k)
    writeback.write_embeddings(graph, run, Label.USER, *with_history(data, users), wait=False)
    writeback.write_embeddings(graph, run, Label.ITEM, data.item_ids, items.numpy(), wait=False)
    written = writeback.write_recommendations(graph, run, recommendations)
    writeback.complete_run(graph, run, metrics={}, counts={"users": data.num_users, "items": data.num_items,
                                                           "recommendations": written})
    writeback.activate_run(graph, run_id)
    writeback.prune_runs(graph, keep=2)
    return RefreshResult(run_id, base["id"], changes, changed_users, changed_items)


def transplant(checkpoint: dict[str, Any], data: RecData, item_text: torch.Tensor | None,
               entity_text: torch.Tensor | None) -> KGRec:
    """A KGRec over ``data`` with the checkpoint's trained parameters, matched by id (see the module docstring)."""
    state = checkpoint["state_dict"]
    config = KGRecConfig.from_saved(checkpoint["config"])
    relation_index = dict(checkpoint["relation_index"])
    net = KGRecNet(data.num_users, data.num_items, data.num_entities, len(relation_index),
                   item_text if config.use_text else None, entity_text if config.use_text else None, config)
    new_state = net.state_dict()
    for key, value in state.items():
        if key in new_state and new_state[key].shape == value.shape and not key.startswith(("kg_", "item_has", "item_text", "entity_text")):
            new_state[key] = value
    if "user_emb.weight" in new_state:  # new users: from their interactions only (their own row was never trained)
        new_state["user_emb.weight"] = torch.zeros_like(new_state["user_emb.weight"])
    _copy_rows(new_state, state, "user_emb.weight", checkpoint["user_ids"], data.user_ids)
    _copy_rows(new_state, state, "item_emb.weight", checkpoint["item_ids"], data.item_ids)
    if "entity_emb.weight" in new_state:
        new_state["entity_emb.weight"] = torch.zeros_like(new_state["entity_emb.weight"])  # new entities: text only
        _copy_rows(new_state, state, "entity_emb.weight", checkpoint["entity_ids"], data.entity_ids)
    for key in ("kg_item", "kg_relation", "kg_entity", "item_has_id"):
        new_state[key] = getattr(net, key)
    net.load_state_dict(new_state)
    net.attach(data, relation_index)
    trained = set(checkpoint.get("trained_item_ids", checkpoint["item_ids"]))
    known = torch.tensor([i in trained for i in data.item_ids], dtype=torch.bool)
    net.item_has_id = net.item_has_id & known  # a new item has no trained id part, interactions or not
    net.set_placement(checkpoint.get("placement", "content"))  # how the run places cold items
    net.eval()
    model = KGRec(config=config, train_config=TrainConfig(**checkpoint["train_config"]))
    model.net, model.relation_index = net, relation_index
    model.restore_choices(checkpoint, data, item_text if config.use_text else None)
    return model


def _copy_rows(new_state: dict[str, torch.Tensor], old_state: dict[str, torch.Tensor], key: str,
               old_ids: list[str], new_ids: list[str]) -> None:
    if key not in old_state or key not in new_state:
        return
    old_index = {x: k for k, x in enumerate(old_ids)}
    pairs = [(k, old_index[x]) for k, x in enumerate(new_ids) if x in old_index]
    if pairs:
        new_rows, old_rows = map(list, zip(*pairs))
        new_state[key][new_rows] = old_state[key][old_rows]


def _triples(item_ids, entity_ids, relations: dict[int, str], kg_item, kg_relation, kg_entity) -> set[tuple[str, str, str]]:
    return {(item_ids[i], relations.get(r, str(r)), entity_ids[e])
            for i, r, e in zip(kg_item.tolist(), kg_relation.tolist(), kg_entity.tolist())}


def _diff_knowledge(checkpoint: dict[str, Any], data: RecData) -> dict[str, int]:
    state = checkpoint["state_dict"]
    names = {k: name for name, k in checkpoint["relation_index"].items()}
    old = _triples(checkpoint["item_ids"], checkpoint["entity_ids"], names,
                   state["kg_item"], state["kg_relation"], state["kg_entity"])
    now = {(data.item_ids[i], name, data.entity_ids[e])
           for name, edges in data.item_entity.items() for i, e in zip(edges[0].tolist(), edges[1].tolist())}
    learnt = {(i, name, e) for i, name, e in now if name in checkpoint["relation_index"]}
    # links of relations the model never learnt are left out of the transplanted model: counted apart
    return {"links_added": len(learnt - old), "links_removed": len(old - learnt), "links_ignored": len(now - learnt)}


def _moved_items(graph: Graph, run: dict[str, Any], data: RecData, items: np.ndarray) -> list[str]:
    """Items whose embedding differs from the one the run stored (or that it did not store)."""
    from kgrec.api.serving import ActiveRun, ItemMatrix

    stored = ItemMatrix.load(graph, ActiveRun(run["id"], run["slot"]))
    moved = []
    for k, item_id in enumerate(data.item_ids):
        row = stored.position.get(item_id)
        if row is None:
            moved.append(item_id)
            continue
        old = stored.vectors[row]
        if np.linalg.norm(items[k] - old) > MOVED * max(np.linalg.norm(old), 1e-12):
            moved.append(item_id)
    return moved


def _changed_lists(graph: Graph, run_id: str, recommendations, page: int = 500) -> list[str]:
    """Users whose new top-K (ids in rank order) differs from their list in ``run_id``."""
    new = recommendations.sort_values(["user_id", "rank"]).groupby("user_id", sort=True)["item_id"].apply(list).to_dict()
    users = sorted(new)
    old: dict[str, list[str]] = {}
    for start in range(0, len(users), page):
        for row in graph.read(q.RUN_LISTS, ids=users[start : start + page], run=run_id):
            old[row["user"]] = row["items"]
    return [u for u in users if old.get(u) != new[u]]
