"""``kgrec run``: export → train (or load a checkpoint) → score → write back → activate.

One run, step by step, each shown as it goes:

1. **export** the graph with an evaluation split (:func:`~kgrec.loaders.export.export_subgraph`);
2. **encode** item and entity text (cached by model and text hash);
3. **train** KGRec with early stopping on validation — or load ``--checkpoint`` (its id maps must match
   the export) — and measure it on the held-out test split;
4. **score** every user with an interaction against every item, excluding what the user already interacted
   with (all splits), keep the top ``top_k`` and **explain** each (:class:`~kgrec.model.explain.Explainer`);
   a user with no interactions gets no list and no stored embedding (the API serves popular items);
5. **write back** into a new ``ModelRun`` (:mod:`kgrec.loaders.writeback`): user and item embeddings into
   the slot the active run does not use, the ``RECOMMENDED`` lists, the checkpoint path; complete it with
   its metrics; then **activate** it in one transaction.

Until step 5 ends, readers keep the previous active run whole: a failure or an interruption anywhere leaves
it served (the half-written run stays ``writing`` and is pruned later).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label
from kgrec.loaders import writeback
from kgrec.loaders.export import export_subgraph
from kgrec.loaders.splits import SplitSpec
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate
from kgrec.model.explain import Explainer
from kgrec.model.harness import rating_metrics, save_checkpoint, text_vectors
from kgrec.model.inductive import CHECKPOINT, build_net, read_checkpoint
from kgrec.model.kgrec_net import KGRec, KGRecConfig
from kgrec.model.metrics import exclude_
from kgrec.model.text import TextEncoder, resolve_model
from kgrec.model.text_graph import encode_items_in_graph
from kgrec.model.training import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """What ``kgrec run`` does.

    Args:
        run_id (str, optional): the ModelRun id. (default: ``run-<UTC timestamp>``)
        top_k (int): recommendations written per user. (default: ``50``)
        model (KGRecConfig): the architecture.
        train (TrainConfig): the schedule.
        split (SplitSpec): the evaluation split (metrics are measured on its test part).
        checkpoint (Path, optional): a ``kgrec.pt`` (or its folder) to load instead of training.
        keep_runs (int): inactive runs kept after activation; older ones are pruned. (default: ``2``)
        activate (bool): make the run the active one at the end. (default: ``True``)
    """

    run_id: str | None = None
    top_k: int = 50
    model: KGRecConfig = KGRecConfig()
    train: TrainConfig = TrainConfig(epochs=200, lr=5e-3, batch_size=8192, eval_every=2, patience=5)
    split: SplitSpec = SplitSpec(kind="random", val=0.1, test=0.2, seed=0)
    checkpoint: Path | None = None
    keep_runs: int = 2
    activate: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 1000:
            raise KgrecError(f"'top_k' (got {self.top_k}) must be between 1 and 1000")

    def params(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "model": self.model.as_dict(), "train": self.train.as_dict(),
                "split": self.split.as_dict(), "checkpoint": str(self.checkpoint) if self.checkpoint else None}


@dataclass
class PipelineResult:
    run_id: str
    metrics: dict[str, float]
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    previous: str | None = None
    pruned: list[str] = field(default_factory=list)


Step = Callable[[str], None]


def run_pipeline(graph: Graph, settings: Settings, config: PipelineConfig = PipelineConfig(), *,
                 progress: bool = False, say: Step = log.info) -> PipelineResult:
    """Run the whole pipeline; see the module docstring."""
    run_id = writeback.check_new_run_id(
        graph, config.run_id or "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    )
    seconds: dict[str, float] = {}

    def timed(name: str, what: str):
        say(f"{what} ...")
        return _Timer(seconds, name)

    with timed("export", "Exporting the graph"):
        export = export_subgraph(graph, split=config.split, progress=progress)
        data = RecData.from_hetero(export.data)
    say(f"  {data.num_users} users, {data.num_items} items, {data.num_entities} entities, "
        f"{data.train.shape[1]} training interactions")
    text_model = resolve_model(settings.text_model)
    with timed("encode", f"Encoding text with {text_model}"):
        encoder = TextEncoder(settings.text_model, settings.data_dir / "text_cache", progress=progress)
        items_text, entities_text = text_vectors(data, encoder)
        in_graph = encode_items_in_graph(graph, encoder)  # Item.text_embedding, for similar-by-text
    say(f"  {encoder.stats.encoded} texts encoded, {encoder.stats.hits} from the cache; "
        f"{in_graph['encoded']} item text vectors written to the graph")

    with timed("train", "Loading the checkpoint" if config.checkpoint else "Training KGRec"):
        model = _load(config.checkpoint, data, items_text) if config.checkpoint else \
            KGRec(items_text, entities_text, config.model, config.train, progress=progress).fit(data)
        metrics = evaluate(model, data, "test", ks=(10, 20)) | rating_metrics(model, data) if data.test.numel() else {}
    if metrics:
        say(f"  test: ndcg@20 {metrics['ndcg@20']:.4f}, recall@20 {metrics['recall@20']:.4f} (best epoch {model.best_epoch})")

    serving = RecData.from_hetero(export.data, all_train=True)
    model.serve_on(serving)
    run_dir = settings.data_dir / "runs" / run_id
    checkpoint = _save(model, run_dir, serving, text_model, metrics)
    with timed("score", f"Scoring and explaining the top {config.top_k} for every user"):
        recommendations = recommend(model, serving, config.top_k, _titles(export.data), _names(export.data))
    say(f"  {len(recommendations)} recommendations")

    with timed("write", f"Writing run {run_id} into the graph"):
        run = writeback.start_run(graph, run_id, config.params() | {"text_model": text_model})
        graph.write(q.SET_RUN_CHECKPOINT, run=run_id, checkpoint=str(run_dir), top_k=config.top_k)
        users, items = model.net.embeddings()
        writeback.write_embeddings(graph, run, Label.USER, *with_history(serving, users), wait=False)
        writeback.write_embeddings(graph, run, Label.ITEM, serving.item_ids, items.numpy(), wait=False)
        written = writeback.write_recommendations(graph, run, recommendations)
        counts = {"users": serving.num_users, "items": serving.num_items, "recommendations": written}
        fitted = {"best_epoch": model.best_epoch, "channel_share": model.beta, "lift": model.lift}
        writeback.complete_run(graph, run, metrics=metrics | fitted, counts=counts)
    previous, pruned = None, []
    if config.activate:
        previous = writeback.activate_run(graph, run_id)
        pruned = writeback.prune_runs(graph, keep=config.keep_runs)
        say(f"Run {run_id} is active (previous: {previous or 'none'}; pruned: {', '.join(pruned) or 'none'})")
    return PipelineResult(run_id, metrics, counts, seconds, checkpoint, previous, pruned)


class _Timer:
    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.into[self.name] = round(time.perf_counter() - self.began, 2)


def recommend(model: KGRec, data: RecData, k: int, item_titles: list[str] | None = None,
              entity_names: list[str] | None = None, batch_size: int = 1024) -> pd.DataFrame:
    """Top-``k`` unseen items per user with scores, ranks and explanations (JSON text); none for a user with
    no interactions (the API serves such a user popular items)."""
    seen = data.seen_matrix
    history = np.diff(seen.indptr) > 0
    explainer = Explainer(model.net, data, model.relation_index, item_titles, entity_names, model.knn,
                          model.beta if model.knn is not None else 0.0)
    k = min(k, data.num_items)
    rows: list[dict[str, Any]] = []
    for start in range(0, data.num_users, batch_size):
        users = torch.arange(start, min(start + batch_size, data.num_users))
        scores = exclude_(model.score(users), users, seen)
        values, best = scores.topk(k, dim=1)  # [B, k]
        for row, user in enumerate(users.tolist()):
            if not history[user]:  # no interactions: an untrained row would rank at random; no list
                continue
            listed = [(item, score) for item, score in zip(best[row].tolist(), values[row].tolist())
                      if np.isfinite(score)]  # seen items are -inf: the user has seen (almost) everything
            explained = explainer.explain_all(user, [item for item, _ in listed])
            for rank, ((item, score), explanation) in enumerate(zip(listed, explained), start=1):
                rows.append({"user_id": data.user_ids[user], "item_id": data.item_ids[item], "score": float(score),
                             "rank": rank, "explanation": json.dumps(explanation, ensure_ascii=False)})
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank", "explanation"])


def with_history(data: RecData, users: torch.Tensor) -> tuple[list[str], np.ndarray]:
    """The ids and embedding rows of the users with an interaction. A user with none has an untrained row
    (no positive ever reached it): storing it would let the API score that user with it, on the fly."""
    history = np.diff(data.seen_matrix.indptr) > 0
    return [u for u, keep in zip(data.user_ids, history) if keep], users.numpy()[history]


def _titles(hetero) -> list[str]:
    """Item titles, as the export carries them (an export made before it did: cut from ``title. text``, which
    is wrong for a title that holds ". ")."""
    store = hetero["item"]
    return list(store.title) if "title" in store else [text.split(". ")[0] for text in store.text]


def _names(hetero) -> list[str]:
    """Entity names, as :func:`_titles` gives titles."""
    store = hetero["entity"]
    return list(store.name) if "name" in store else [text.split(". ")[0] for text in store.text]


def _save(model: KGRec, run_dir: Path, data: RecData, text_model: str, metrics: dict[str, float]) -> Path:
    return save_checkpoint(model, run_dir / CHECKPOINT, data, {"text_model": text_model, "metrics": metrics})


def _load(path: Path, data: RecData, item_text: torch.Tensor | None = None) -> KGRec:
    """A trained KGRec from a checkpoint, attached to ``data`` (whose ids must be the checkpoint's);
    ``item_text``: the items' text vectors, for the cold items' text channel."""
    path = path / CHECKPOINT if path.is_dir() else path
    checkpoint = read_checkpoint(path)
    for kind in ("user", "item", "entity"):
        if checkpoint.get(f"{kind}_ids") != getattr(data, f"{kind}_ids"):
            raise KgrecError(f"checkpoint {path} was trained on other {kind}s than the graph now holds; "
                             "train a new model instead (drop --checkpoint)")
    model = KGRec(config=KGRecConfig.from_saved(checkpoint["config"]), train_config=TrainConfig(**checkpoint["train_config"]))
    model.net = build_net(checkpoint)
    model.relation_index = dict(checkpoint["relation_index"])
    model.net.attach(data, model.relation_index)
    trained = set(checkpoint.get("trained_item_ids", data.item_ids))
    model.net.item_has_id &= torch.tensor([i in trained for i in data.item_ids], dtype=torch.bool)
    model.restore_choices(checkpoint, data, item_text)
    return model
