"""The training and comparison harness: an export in, trained models and an honest comparison out.

``kgrec train`` and ``kgrec evaluate`` (and ``benchmarks/quality.py``) go through here: every model reads
the same :class:`~kgrec.model.data.RecData` (the export's split), is evaluated by the same
:func:`~kgrec.model.evaluate.evaluate` (full ranking, training and validation items excluded), and the
results land in one table (markdown and CSV) with training curves as PNG.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kgrec.errors import KgrecError
from kgrec.loaders.export import Export
from kgrec.model.baselines import EASE, BiasRating, ItemKNN, LightGCNRec, MFBPR, Popularity, TextSimilarity
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate, evaluate_ratings
from kgrec.model.kgrec_net import KGRec, KGRecConfig
from kgrec.model.text import TextEncoder
from kgrec.model.training import TrainConfig

MODELS = ("kgrec", "popularity", "itemknn", "ease", "mf-bpr", "lightgcn", "text")
ABLATIONS = ("kgrec-no-text", "kgrec-no-kg", "kgrec-kg-shuffled", "kgrec-no-neighbourhood", "kgrec-uniform-negatives",
             "kgrec-no-time", "kgrec-entity-ids", "kgrec-channel")
#: Models that also predict explicit ratings (RMSE and MAE where the data has them).
RATING_MODELS = ("kgrec-rating", "bias", "mean")
MODEL_NAMES = MODELS + ABLATIONS + RATING_MODELS
RATING_WEIGHT = 1.0  # the rating loss weight of "kgrec-rating" when the configuration sets none


@dataclass
class Result:
    model: str
    metrics: dict[str, float]
    train_seconds: float
    peak_rss_mib: float
    best_epoch: int | None = None
    history: list[tuple[int, float, dict[str, float]]] = field(default_factory=list)


def load_data(export_dir: Path) -> RecData:
    """The RecData of a saved export (``kgrec export --out DIR``)."""
    return RecData.from_hetero(Export.load(export_dir).data)


def text_vectors(data: RecData, encoder: TextEncoder) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encoded item and entity text (rows of zeros where a node has no text)."""
    def encode(texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), encoder.dimension)
        present = [k for k, t in enumerate(texts) if t.strip()]
        if present:
            out[present] = torch.from_numpy(encoder.encode([texts[k] for k in present]))
        return out

    items = encode(data.item_text)
    entities = encode(data.entity_text) if data.num_entities else None
    return items, entities


def shuffled_knowledge(data: RecData, seed: int = 0) -> RecData:
    """The same data with each relation's item→entity links rewired at random (degrees kept): the
    'knowledge graph shuffled' ablation."""
    g = torch.Generator().manual_seed(seed)
    shuffled = {name: torch.stack([edges[0], edges[1][torch.randperm(edges.shape[1], generator=g)]])
                for name, edges in data.item_entity.items()}
    return RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "item_entity": shuffled})


def channel_alone(config: KGRecConfig, train: TrainConfig) -> EASE | ItemKNN:
    """KGRec's neighbourhood channel on its own, as KGRec fits it (the 'kgrec-channel' ablation: what the
    embeddings add to it)."""
    model = KGRec(config=config, train_config=train).new_channel()
    model.name = "KGRec's channel alone"
    return model


def check_model(name: str) -> str:
    """``name`` if :func:`build` knows it, else a :class:`KgrecError` listing :data:`MODEL_NAMES`."""
    if name not in MODEL_NAMES:
        raise KgrecError(f"unknown model {name!r}: choose from {', '.join(MODEL_NAMES)}")
    return name


def build(name: str, item_vectors: torch.Tensor | None, entity_vectors: torch.Tensor | None,
          config: KGRecConfig, train: TrainConfig, progress: bool) -> Any:
    """A fresh model by name (see MODELS and ABLATIONS)."""
    base = dict(epochs=train.epochs, lr=train.lr, weight_decay=train.weight_decay, batch_size=train.batch_size,
                patience=train.patience, eval_every=train.eval_every, seed=train.seed, device=train.device)
    factories: dict[str, Callable[[], Any]] = {
        "kgrec": lambda: KGRec(item_vectors, entity_vectors, config, train, progress=progress),
        "kgrec-no-text": lambda: KGRec(None, None, KGRecConfig(**{**config.as_dict(), "use_text": False}), train,
                                       name="KGRec w/o text", progress=progress),
        "kgrec-no-kg": lambda: KGRec(item_vectors, entity_vectors, KGRecConfig(**{**config.as_dict(), "use_kg": False}),
                                     train, name="KGRec w/o KG", progress=progress),
        "kgrec-kg-shuffled": lambda: KGRec(item_vectors, entity_vectors, config, train, name="KGRec, KG shuffled",
                                           progress=progress),
        "kgrec-no-neighbourhood": lambda: KGRec(item_vectors, entity_vectors,
                                                KGRecConfig(**{**config.as_dict(), "neighbourhood": False}), train,
                                                name="KGRec w/o neighbourhood", progress=progress),
        "kgrec-uniform-negatives": lambda: KGRec(item_vectors, entity_vectors,
                                                 KGRecConfig(**{**config.as_dict(), "negatives": 1}), train,
                                                 name="KGRec, uniform negatives", progress=progress),
        "kgrec-no-time": lambda: KGRec(item_vectors, entity_vectors, KGRecConfig(**{**config.as_dict(), "use_time": False}),
                                       train, name="KGRec w/o time", progress=progress),
        "kgrec-entity-ids": lambda: KGRec(item_vectors, entity_vectors,
                                          KGRecConfig(**{**config.as_dict(), "shared_entity_ids": False}), train,
                                          name="KGRec, every entity with an id", progress=progress),
        "kgrec-channel": lambda: channel_alone(config, train),
        "kgrec-rating": lambda: KGRec(item_vectors, entity_vectors,
                                      KGRecConfig(**{**config.as_dict(),
                                                     "rating_weight": config.rating_weight or RATING_WEIGHT}),
                                      train, name="KGRec + rating loss", progress=progress),
        "bias": BiasRating,
        "mean": lambda: BiasRating(biases=False),
        "popularity": Popularity,
        "itemknn": ItemKNN,
        "ease": lambda: EASE(val_k=train.val_k),
        "mf-bpr": lambda: MFBPR(config.dim, progress=progress, **base),
        "lightgcn": lambda: LightGCNRec(config.dim, config.num_layers, progress=progress, **base),
        "text": lambda: TextSimilarity(item_vectors),
    }
    check_model(name)
    if name in ("text",) and item_vectors is None:
        raise KgrecError("the text baseline needs item text vectors")
    return factories[name]()


def run(name: str, model: Any, data: RecData, ks: tuple[int, ...] = (10, 20)) -> Result:
    """Fit ``model`` on the training split and evaluate it on the test split."""
    train_data = shuffled_knowledge(data) if name == "kgrec-kg-shuffled" else data
    began = time.perf_counter()
    model.fit(train_data)
    seconds = time.perf_counter() - began
    metrics = evaluate(model, train_data, "test", ks=ks) | rating_metrics(model, train_data)
    history = [(r.epoch, r.loss, r.val) for r in getattr(model, "history", [])]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Result(getattr(model, "name", name), metrics, seconds, peak, getattr(model, "best_epoch", None), history)


def rating_metrics(model: Any, data: RecData, split: str = "test") -> dict[str, float]:
    """``{"rmse", "mae"}`` on ``split`` when ``model`` predicts ratings (a KGRec only with a rating head)
    and the split has rated pairs; else ``{}``."""
    if not callable(getattr(model, "predict", None)) or not data.ratings(split)[1].numel():
        return {}
    if isinstance(model, KGRec) and model.config.rating_weight <= 0:
        return {}
    return {k: v for k, v in evaluate_ratings(model, data, split).items() if k != "rated"}


def write_results(results: list[Result], out: Path, title: str) -> dict[str, Path]:
    """The comparison as markdown, CSV and a PNG of the training curves."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"model": r.model, **{k: round(v, 4) for k, v in r.metrics.items() if k != "users"},
             "train s": round(r.train_seconds, 1), "best epoch": r.best_epoch} for r in results]
    table = pd.DataFrame(rows).astype({"best epoch": "Int64"})  # an epoch number, blank for untrained models
    paths = {"csv": out / "results.csv", "md": out / "results.md", "png": out / "curves.png", "json": out / "history.json"}
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(f"# {title}\n\n" + markdown_table(table) + "\n")
    paths["json"].write_text(json.dumps({r.model: r.history for r in results}, default=str))
    _plot_curves(results, paths["png"], title)
    return paths


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (numbers right-aligned)."""
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---:" if pd.api.types.is_numeric_dtype(t) else "---" for t in table.dtypes) + " |"
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _plot_curves(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        if not r.history:
            continue
        loss_ax.plot([h[0] for h in r.history], [h[1] for h in r.history], label=r.model)
        val = [(h[0], v) for h in r.history for k, v in h[2].items() if k.startswith("ndcg@")]
        if val:
            val_ax.plot(*zip(*val), marker="o", label=r.model)
    loss_ax.set(xlabel="epoch", ylabel="loss (BPR, + weighted rating MSE where trained)", title="training loss")
    val_ax.set(xlabel="epoch", ylabel="validation nDCG", title="validation")
    for ax in (loss_ax, val_ax):
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_checkpoint(model: KGRec, path: Path, data: RecData, extra: dict[str, Any]) -> Path:
    """Weights with the model and training configuration (nanoGPT-style), the id maps of ``data`` (the data
    the model is attached to), which items had interactions to train on and where cold items are placed,
    and ``extra``: what :func:`kgrec.model.inductive.read_checkpoint` reads back, so ``kgrec run
    --checkpoint`` takes a ``kgrec train`` checkpoint too. Written to ``<path>.partial`` and renamed, so an
    interrupted save leaves no cut-off ``path``."""
    state = {
        **model.checkpoint(), "user_ids": data.user_ids, "item_ids": data.item_ids, "entity_ids": data.entity_ids,
        "trained_item_ids": [data.item_ids[k] for k in torch.nonzero(model.net.item_has_id).flatten().tolist()],
        "cold_anchors": model.net.cold_anchors(),  # where new items are placed (KGRecNet.new_item_embeddings)
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)
    return path


def results_dict(result: Result) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k != "history"}
