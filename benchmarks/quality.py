"""Quality benchmark: every model on the same split of three real datasets, and the table in docs/results.md.

    .venv/bin/python benchmarks/quality.py                 # all three datasets, all models (several hours on 2 cores)
    .venv/bin/python benchmarks/quality.py --datasets hetrec-lastfm --models kgrec,itemknn

For each dataset it loads the adapter's files (``--data``, default ``../shared/data``) into a throwaway local
Neo4j (or ``--uri``, which it WIPES), exports the graph with the per-user random split (seed 0: 20 % of
each user's interactions for test, 10 % for validation, the rest for training; every model trains on the
training part only and early-stops on validation), then trains and evaluates every model — full ranking of
the whole catalogue, training and validation items excluded — and the cold-start protocol: 10 % of the
items that have text or knowledge links (seeded) lose all their training and validation interactions, which
become test interactions, and another 10 % lose their training interactions to validation (cold validation
items, where KGRec chooses its cold items' text weight γ); models are retrained on what is left and rank the
cold test items for the users who had interacted with them (the goal's protocol; ``catalogue ndcg@20`` also
reports the stricter ranking of the whole catalogue, where cold items must beat items with history); only
the cold items count as relevant.

A machine without Neo4j (a GPU box, say) runs from snapshots: ``--save-snapshots DIR`` writes, per dataset,
the exported split and the encoded text (``<name>.pt``; text vectors as float16 to keep it small), and
``--from-snapshots DIR`` trains and evaluates on them with no Neo4j and no text encoder::

    .venv/bin/python benchmarks/quality.py --save-snapshots .gpu --models popularity --no-cold-start --docs ''
    python3 benchmarks/quality.py --from-snapshots .gpu --device cuda --out benchmarks/results/quality --docs ''

On a CUDA device each trained model's peak GPU memory (``torch.cuda.max_memory_allocated``) is recorded.
Several processes can share the work (a GPU has room for many of these small models), each with its own
``--models`` and ``--out``; ``--report-only --merge DIR ...`` then folds their sections into ``--out``
(same dataset, split and schedule only) and writes the report. The report also gathers the sections under
``--compare-out`` (default ``benchmarks/results/quality-gpu``: the same models measured on another device,
e.g. training time on a GPU) into a table beside the main figures.

Writes, under ``--out`` (default ``benchmarks/results/quality``): per dataset ``<name>/results.{md,csv}``,
``<name>/curves.png`` (training loss and validation nDCG@20), ``<name>/cold_start.csv``,
``<name>/per_user.csv.gz`` (each test user's nDCG@20 and Recall@20 per model: the goal ratios' and ablations'
paired bootstrap intervals are computed from it); and ``--docs``
(default ``docs/results.md``) with every table, the goals and ``docs/img/quality.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated")
warnings.filterwarnings("ignore", message=r"Sparse invariant checks")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MIB, RssSampler, log, neo4j_server, phase, release_free_memory  # noqa: E402

from kgrec import __version__  # noqa: E402
from kgrec.config import Settings  # noqa: E402
from kgrec.db import Graph  # noqa: E402
from kgrec.graph_schema.migrations import apply_migrations, drop_everything  # noqa: E402
from kgrec.loaders.adapters import ADAPTERS  # noqa: E402
from kgrec.loaders.export import export_subgraph  # noqa: E402
from kgrec.loaders.ingest import LoadOptions, load_dataset  # noqa: E402
from kgrec.loaders.splits import SplitSpec  # noqa: E402
from kgrec.model.baselines import EASE  # noqa: E402
from kgrec.model.data import RecData  # noqa: E402
from kgrec.model.evaluate import evaluate_cold_start, evaluate_per_user  # noqa: E402
from kgrec.model.harness import (  # noqa: E402
    ABLATIONS, MODELS, Result, build, markdown_table, rating_metrics, shuffled_knowledge, text_vectors, write_results,
)
from kgrec.model.kgrec_net import KGRecConfig  # noqa: E402
from kgrec.model.metrics import paired_ratio_interval  # noqa: E402
from kgrec.model.text import TextEncoder, resolve_model  # noqa: E402
from kgrec.model.training import TrainConfig  # noqa: E402

DATASETS = {  # adapter -> folder under --data
    "hetrec-lastfm": "hetrec-lastfm-2k",
    "movielens": "ml-latest-small",
    "recbole": "recbole-ml100k-kg",
}
TITLES = {"hetrec-lastfm": "HetRec Last.FM-2k", "movielens": "MovieLens ml-latest-small",
          "recbole": "RecBole ml-100k + Freebase KG"}
SPLIT = SplitSpec(kind="random", val=0.1, test=0.2, seed=0)
BASELINES = ("popularity", "itemknn", "ease", "mf-bpr", "lightgcn", "text")
COLD_MODELS = ("popularity", "itemknn", "text", "kgrec")
COLD_SHARE = 0.1
GOAL_RATIO = 1.05
GOAL_COLD_VS_POPULARITY = 2.0
KS = (10, 20)
PER_USER = ("ndcg@20", "recall@20")  # kept per test user, for the paired confidence intervals of the report
PER_USER_FILE = "per_user.csv.gz"


@dataclass
class Run:
    key: str
    result: Result
    peak_mib: float
    beta: float | None = None  # KGRec's neighbourhood weight, chosen on validation
    gpu_peak_mib: float | None = None  # torch.cuda.max_memory_allocated during training, on a CUDA device
    best_seconds: float | None = None  # training seconds until the end of the best epoch (the weights kept)
    gamma: float | None = None  # KGRec's text-channel weight for cold items, chosen on validation
    gamma_basis: str | None = None  # what gamma was chosen on (KGRec.gamma_basis)
    channel: str | None = None  # what KGRec's EASE channel chose on validation (its weights; channel_choices)
    per_user: pd.DataFrame | None = None  # each test user's PER_USER metrics (column "user": the index)


def main() -> None:
    args = parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        if name not in DATASETS:
            raise SystemExit(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}")
        if args.from_snapshots:
            if not (args.from_snapshots / f"{name}.pt").is_file():
                raise SystemExit(f"{args.from_snapshots / (name + '.pt')} is missing: write it with --save-snapshots")
        elif not (args.data / DATASETS[name]).is_dir():
            raise SystemExit(f"{args.data / DATASETS[name]} is missing: point --data at the folder that holds {DATASETS[name]}/")
    if args.merge and not args.report_only:
        raise SystemExit("--merge goes with --report-only")
    if args.cold_only and args.no_cold_start:
        raise SystemExit("--cold-only and --no-cold-start leave nothing to measure: choose one")
    torch.set_num_threads(args.threads)
    config = KGRecConfig(dim=args.dim, num_layers=args.layers)
    train = schedule(args)
    encoder = TextEncoder(args.text_model, args.out / "text_cache", progress=False)
    began = time.perf_counter()
    sections = []
    if args.report_only:  # gather the sections saved under --out into --docs, measure nothing
        for folder in args.merge:
            merge_folder(folder, args.out)
        write_docs(merged_sections(args.out, []), args, config, train, 0.0)
        return
    if args.from_snapshots:  # no Neo4j, no encoder: the split and the text vectors come from the snapshots
        for name in names:
            data, vectors = load_snapshot(args.from_snapshots / f"{name}.pt")
            sections.append(run_dataset(name, data, models, encoder, config, train, args, vectors))
            sections[-1] = merge_into_saved(sections[-1]) if args.keep_models else sections[-1]
            write_section_files(sections[-1])
            save_section(sections[-1])
        write_docs(merged_sections(args.out, sections), args, config, train, time.perf_counter() - began)
        return
    with neo4j_server(args) as server:
        graph = Graph.connect(_settings(server))
        try:
            for name in names:
                data = load_and_export(graph, name, args.data / DATASETS[name])
                sections.append(run_dataset(name, data, models, encoder, config, train, args))
                sections[-1] = merge_into_saved(sections[-1]) if args.keep_models else sections[-1]
                write_section_files(sections[-1])
                save_section(sections[-1])
        finally:
            graph.close()
    write_docs(merged_sections(args.out, sections), args, config, train, time.perf_counter() - began)


def schedule(args: argparse.Namespace) -> TrainConfig:
    """The training schedule every trained model gets (``--epochs``, ``--lr``, ``--eval-every``, ``--patience``,
    ``--device``); ``schedule(parse_args([]))`` is the default one."""
    return TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=8192, eval_every=args.eval_every,
                       patience=args.patience, seed=0, device=args.device)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
                        help="folder holding hetrec-lastfm-2k/, ml-latest-small/, recbole-ml100k-kg/")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--models", default=",".join((*MODELS, *ABLATIONS)), help="comma-separated model names")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quality"))
    parser.add_argument("--docs", default="docs/results.md", help="the markdown report ('' for none)")
    parser.add_argument("--epochs", type=int, default=1000,
                        help="most epochs of every trained model (early stopping; LightGCN needs up to ~550 to converge)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate of every trained model")
    parser.add_argument("--eval-every", type=int, default=4, help="epochs between validations")
    parser.add_argument("--patience", type=int, default=10, help="validations without improvement before stopping")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--text-model", default="all-MiniLM-L6-v2")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start protocol")
    parser.add_argument("--cold-only", action="store_true",
                        help="only the cold-start protocol (with --keep-models, the saved main comparison stays)")
    parser.add_argument("--report-only", action="store_true", help="write --docs from the sections saved under --out")
    parser.add_argument("--note", default="", help="a line for the report's header (how the sections were measured)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu", help="torch device the trained models train on (e.g. cuda)")
    parser.add_argument("--keep-models", action="store_true",
                        help="keep the models an earlier run saved for the same dataset, split and schedule (add ablations later)")
    parser.add_argument("--save-snapshots", type=Path, help="also write each dataset's split and text vectors here")
    parser.add_argument("--from-snapshots", type=Path, help="run on snapshots written by --save-snapshots (no Neo4j)")
    parser.add_argument("--compare-out", type=Path, default=Path("benchmarks/results/quality-gpu"),
                        help="sections measured on another device (another --out), reported beside the main figures")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="with --report-only: fold the sections saved under these --out folders into --out first")
    parser.add_argument("--uri", help="use this Neo4j (it is WIPED) instead of a throwaway local one")
    parser.add_argument("--user", default="neo4j")
    parser.add_argument("--password", default="")
    parser.add_argument("--database", default="neo4j")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="512m")
    return parser.parse_args(argv)


def _settings(server) -> Settings:
    return Settings(_env_file=None, env="development", neo4j_uri=server.uri, neo4j_user=server.user,
                    neo4j_password_=server.password, neo4j_database=server.database)


def load_and_export(graph: Graph, name: str, folder: Path) -> RecData:
    with phase(f"{name}: load {folder} into Neo4j"):
        drop_everything(graph)
        apply_migrations(graph, dimension=384)
        report = load_dataset(graph, ADAPTERS[name](folder), LoadOptions(progress=False))
        log(f"  rows written: {report.written}")
    with phase(f"{name}: export with the split {SPLIT.as_dict()}"):
        export = export_subgraph(graph, split=SPLIT)
        log(f"  {export.meta['counts']}; split {export.meta['split']['edges']}")
    return RecData.from_hetero(export.data)


def fit_and_evaluate(key: str, data: RecData, vectors, config: KGRecConfig, train: TrainConfig, cold: torch.Tensor | None = None) -> Run:
    model = build(key, *vectors, config, train, progress=False)
    fit_data = shuffled_knowledge(data) if key == "kgrec-kg-shuffled" else data
    release_free_memory()
    cuda = train.torch_device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(train.torch_device)
    with RssSampler() as rss:
        began = time.perf_counter()
        model.fit(fit_data)
        if cuda:
            torch.cuda.synchronize(train.torch_device)
        seconds = time.perf_counter() - began
    gpu_peak = torch.cuda.max_memory_allocated(train.torch_device) / MIB if cuda else None
    per_user = None
    if cold is None:
        metrics, per_user = evaluate_per_user(model, fit_data, "test", ks=KS)
        metrics |= rating_metrics(model, fit_data)
        per_user = per_user[["user", *PER_USER]]
    else:
        metrics = evaluate_cold_start(model, fit_data, cold, ks=KS)
        strict = evaluate_cold_start(model, fit_data, cold, ks=KS, candidates="catalogue")
        metrics["catalogue ndcg@20"] = strict["ndcg@20"]
    history = [(r.epoch, r.loss, r.val) for r in getattr(model, "history", [])]
    result = Result(getattr(model, "name", key), metrics, seconds, (rss.peak - rss.before) / MIB,
                    getattr(model, "best_epoch", None), history)
    log(f"  {key:<18} ndcg@20 {metrics['ndcg@20']:.4f}  recall@20 {metrics['recall@20']:.4f}  "
        f"{seconds:6.1f} s  peak +{result.peak_rss_mib:.0f} MiB" + (f" (GPU {gpu_peak:.0f} MiB)" if cuda else "")
        + f"  best epoch {result.best_epoch}")
    best = [r.seconds for r in getattr(model, "history", []) if r.epoch == result.best_epoch]
    basis = getattr(model, "gamma_basis", None)
    if getattr(model, "lift_basis", ""):
        basis = (f"{basis}; " if basis else "") + f"cold lift δ = {model.lift:g}, {model.lift_basis}"
    return Run(key, result, result.peak_rss_mib, getattr(model, "beta", None), gpu_peak, best[0] if best else None,
               getattr(model, "gamma", None), basis, channel=channel_choices(model), per_user=per_user)


def channel_choices(model) -> str | None:
    """What an EASE model — KGRec's channel, or the channel alone — chose on validation: its L2, knowledge and
    time weights, and why the time kernel was or was not tried (None for other models)."""
    ease = model if isinstance(model, EASE) else getattr(model, "knn", None)
    if not isinstance(ease, EASE) or (ease.knowledge_weights, ease.time_weights) == ((0.0,), (0.0,)):
        return None  # plain EASE: its lambda is all it chose
    return (f"λ {ease.lam:g}, knowledge rows α {ease.knowledge_weight:g}, time kernel α_t {ease.time_weight:g} "
            f"(τ {ease.time_scale:g} s; {ease.time_basis})")


def cold_split(data: RecData, share: float, seed: int = 0) -> tuple[RecData, torch.Tensor]:
    """The cold-start protocol's data. Of the items with text or knowledge links and with training
    interactions, a seeded ``share`` (the cold test items) lose all their training and validation pairs to
    the test split, and a second, disjoint ``share`` (the cold validation items) lose their training pairs
    to the validation split: no model trains on either, and a model can tune what it does for cold items
    (KGRec's gamma) on items it never saw, as it must on the test ones."""
    has_side = torch.zeros(data.num_items, dtype=torch.bool)
    has_side[[k for k, t in enumerate(data.item_text) if t.strip()]] = True
    for edges in data.item_entity.values():
        has_side[edges[0]] = True
    trained = torch.zeros(data.num_items, dtype=torch.bool)
    trained[data.train[1]] = True
    candidates = torch.nonzero(has_side & trained).flatten().numpy()
    rng = np.random.default_rng(seed)
    size = max(1, int(share * len(candidates)))
    cold = torch.from_numpy(np.sort(rng.choice(candidates, size=size, replace=False)))
    rest = np.setdiff1d(candidates, cold.numpy())
    cold_val = torch.from_numpy(np.sort(rng.choice(rest, size=min(size, len(rest)), replace=False)))
    is_cold = {split: torch.isin(getattr(data, split)[1], cold) for split in ("train", "val")}
    to_val = torch.isin(data.train[1], cold_val)
    keep = ~is_cold["train"] & ~to_val
    fields = {f: getattr(data, f) for f in data.__dataclass_fields__}
    fields.update(train=data.train[:, keep], train_weight=data.train_weight[keep],
                  train_time=data.train_time[keep] if data.train_time is not None else None,
                  val=torch.cat([data.val[:, ~is_cold["val"]], data.train[:, to_val]], dim=1),
                  test=torch.cat([data.test, data.train[:, is_cold["train"]], data.val[:, is_cold["val"]]], dim=1))
    if data.train_rating is not None:  # the ratings move with their pairs
        fields.update(train_rating=data.train_rating[keep],
                      val_rating=torch.cat([data.val_rating[~is_cold["val"]], data.train_rating[to_val]]),
                      test_rating=torch.cat([data.test_rating, data.train_rating[is_cold["train"]],
                                             data.val_rating[is_cold["val"]]]))
    return RecData(**fields), cold


def save_snapshot(path: Path, data: RecData, vectors) -> None:
    """The split and the text vectors of one dataset, for a machine without Neo4j: only rows with text,
    as float16 (a snapshot of HetRec is about 25 MB)."""
    def rows(v: torch.Tensor | None):
        if v is None:
            return None
        keep = torch.nonzero(v.abs().sum(dim=1) > 0).flatten()
        return {"shape": tuple(v.shape), "index": keep, "values": v[keep].half()}

    fields = {f: getattr(data, f) for f in data.__dataclass_fields__ if f != "data"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"data": fields, "vectors": [rows(v) for v in vectors]}, path)
    log(f"  snapshot: {path} ({path.stat().st_size / MIB:.1f} MiB)")


def load_snapshot(path: Path):
    def dense(blob):
        if blob is None:
            return None
        out = torch.zeros(blob["shape"])
        out[blob["index"]] = blob["values"].float()
        return out

    blob = torch.load(path, weights_only=False)
    return RecData(**blob["data"]), tuple(dense(v) for v in blob["vectors"])


def run_dataset(name: str, data: RecData, models: list[str], encoder: TextEncoder, config: KGRecConfig,
                train: TrainConfig, args: argparse.Namespace, vectors=None) -> dict:
    if vectors is None:
        with phase(f"{name}: encode item and entity text ({resolve_model(args.text_model)})"):
            vectors = text_vectors(data, encoder)
            log(f"  {encoder.stats.encoded} encoded, {encoder.stats.hits} from the cache")
        if args.save_snapshots:
            save_snapshot(args.save_snapshots / f"{name}.pt", data, vectors)
    runs = []
    folder = args.out / name
    if not args.cold_only:
        with phase(f"{name}: {len(models)} models on the same split"):
            for key in models:
                if key == "kgrec-no-time" and not data.has_times:
                    log(f"  {key}: skipped: the interactions have no times, so it would be KGRec itself")
                    continue
                runs.append(fit_and_evaluate(key, data, vectors, config, train))
    folder.mkdir(parents=True, exist_ok=True)
    cold_runs = []
    if not args.no_cold_start:
        cold_data, cold = cold_split(data, COLD_SHARE)
        with phase(f"{name}: cold start, {cold.numel()} items held out of training"):
            for key in [m for m in COLD_MODELS if m in models]:
                cold_runs.append(fit_and_evaluate(key, cold_data, vectors, config, train, cold=cold))
    counts = {"split": split_digest(data), "users": data.num_users, "items": data.num_items, "entities": data.num_entities,
              "train": int(data.train.shape[1]), "val": int(data.val.shape[1]), "test": int(data.test.shape[1]),
              "knowledge": int(sum(e.shape[1] for e in data.item_entity.values())),
              "relations": len(data.item_entity)}
    return {"name": name, "runs": runs, "cold": cold_runs, "counts": counts, "folder": folder,
            "device": device_name(train.device), "schedule": {k: v for k, v in train.as_dict().items() if k in ("epochs", "lr", "batch_size", "eval_every", "patience", "device")}}


# -- saved sections: a report can gather datasets measured by separate runs of this script -----------------
def save_section(section: dict) -> None:
    runs = lambda rs: [{"key": r.key, "model": r.result.model, "metrics": r.result.metrics, "train_seconds": r.result.train_seconds,
                        "peak_mib": r.peak_mib, "beta": r.beta, "best_epoch": r.result.best_epoch,
                        "gpu_peak_mib": r.gpu_peak_mib, "best_seconds": r.best_seconds, "gamma": r.gamma,
                        "gamma_basis": r.gamma_basis, "channel": r.channel} for r in rs]
    (section["folder"] / "section.json").write_text(json.dumps(
        {"name": section["name"], "counts": section["counts"], "runs": runs(section["runs"]), "cold": runs(section["cold"]),
         "measured_at": section.get("measured_at") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
         "device": section.get("device") or device_name("cpu"),
         "schedule": section.get("schedule"), "cold_measured": section.get("cold_measured")}, indent=1))
    tables = [r.per_user.assign(key=r.key) for r in section["runs"] if r.per_user is not None]
    path = section["folder"] / PER_USER_FILE
    if tables:
        pd.concat(tables)[["key", "user", *PER_USER]].to_csv(path, index=False, float_format="%.6g")
    elif path.is_file():  # no run keeps per-user values now: none may be left from an earlier one
        path.unlink()


def device_name(device: str) -> str:
    """What trains the models on the torch ``device``: the GPU's name, or the CPU and its torch threads."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def load_section(path: Path) -> dict:
    raw = json.loads(path.read_text())
    runs = lambda rs: [Run(r["key"], Result(r["model"], r["metrics"], r["train_seconds"], r["peak_mib"], r["best_epoch"]),
                           r["peak_mib"], r["beta"], r.get("gpu_peak_mib"), r.get("best_seconds"), r.get("gamma"),
                           r.get("gamma_basis"), channel=r.get("channel"))
                       for r in rs]
    main = runs(raw["runs"])
    per_user = path.parent / PER_USER_FILE
    if per_user.is_file():  # the runs measured with per-user values (older sections have none)
        by_key = dict(tuple(pd.read_csv(per_user).groupby("key")))
        for r in main:
            if r.key in by_key:
                r.per_user = by_key[r.key].drop(columns="key").reset_index(drop=True)
    return {"name": raw["name"], "counts": raw["counts"], "runs": main, "cold": runs(raw["cold"]),
            "folder": path.parent, "measured_at": raw.get("measured_at"), "device": raw.get("device"),
            "schedule": raw.get("schedule"), "cold_measured": raw.get("cold_measured")}


def merged_sections(out: Path, fresh: list[dict]) -> list[dict]:
    """This run's sections, plus those saved by earlier runs for the other datasets (in DATASETS order)."""
    by_name = {load_section(p)["name"]: load_section(p) for p in sorted(out.glob("*/section.json"))}
    by_name |= {s["name"]: s for s in fresh}
    return [by_name[name] for name in DATASETS if name in by_name]


def split_digest(data: RecData) -> str:
    """A short digest of the split (its train, validation and test pairs): two runs compare only on equal ones."""
    import hashlib

    h = hashlib.sha256()
    for pairs in (data.train, data.val, data.test):
        h.update(pairs.numpy().tobytes())
    return h.hexdigest()[:16]


def saved_histories(folder: Path) -> dict:
    """The training curves a section saved beside it (``history.json``; none: ``{}``)."""
    path = folder / "history.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def merge_into_saved(section: dict) -> dict:
    """``section`` with the models that an earlier run saved for the same dataset, the same split counts and
    the same schedule, and that this run did not measure (``--keep-models``: ablations added by a second run)."""
    path = section["folder"] / "section.json"
    if not path.is_file():
        return section
    saved = load_section(path)
    same_split = all(saved["counts"].get(k) == v for k, v in section["counts"].items() if k in saved["counts"])
    if not same_split or saved.get("schedule") != section.get("schedule"):
        log(f"  {path}: another split or schedule, not merged")
        return section
    merged = dict(section)
    histories = saved_histories(section["folder"])
    kept = []
    for part in ("runs", "cold"):
        fresh = {r.key: r for r in section[part]}
        saved_keys = {r.key for r in saved[part]}
        for r in saved[part]:
            if r.key not in fresh:
                r.result.history = histories.get(r.result.model, []) if part == "runs" else []
                kept.append(r.key)
        # the saved order, fresh runs in place of saved ones with their key, new ones last
        merged[part] = [fresh.get(r.key, r) for r in saved[part]] + [r for r in section[part] if r.key not in saved_keys]
    if not section["cold"]:  # the saved cold start stays, with where it was measured
        merged["cold_measured"] = saved.get("cold_measured")
    log(f"  kept from {path} ({saved['measured_at']}): {', '.join(kept) or 'nothing'}")
    return merged


def merge_folder(source: Path, out: Path) -> None:
    """Fold the sections saved under ``source`` into those under ``out`` (see :func:`merge_into_saved`): a
    dataset's models measured by several processes, each with its own ``--out``."""
    sections = sorted(source.glob("*/section.json"))
    if not sections:
        raise SystemExit(f"--merge {source}: no <dataset>/section.json under it")
    for path in sections:
        section = load_section(path)
        histories = saved_histories(path.parent)
        for r in section["runs"]:
            r.result.history = histories.get(r.result.model, [])
        section["folder"] = out / section["name"]
        section["folder"].mkdir(parents=True, exist_ok=True)
        target = section["folder"] / "section.json"
        if target.is_file():
            saved = load_section(target)
            if saved["counts"] != section["counts"]:
                raise SystemExit(f"--merge {path}: another split than {target}; not merged")
            if saved.get("schedule") == section.get("schedule"):
                section = merge_into_saved(section)
            elif section["runs"] or not section["cold"]:
                raise SystemExit(f"--merge {path}: another schedule or device than {target}; only a cold-start "
                                 "section (--cold-only) may come from another, and it then replaces the cold start")
            else:  # the cold-start protocol is a separate experiment: it may come from another run
                histories = saved_histories(saved["folder"])
                for r in saved["runs"]:
                    r.result.history = histories.get(r.result.model, [])
                cold_measured = {k: section.get(k) for k in ("measured_at", "device", "schedule")}
                section = saved | {"cold": section["cold"], "cold_measured": cold_measured}
        write_section_files(section)
        save_section(section)
        log(f"  merged {path} into {target}")


def write_section_files(section: dict) -> None:
    """``results.{md,csv}``, ``curves.png`` and ``history.json`` of the main comparison, and ``cold_start.csv``."""
    folder = section["folder"]
    if section["runs"]:
        write_results([r.result for r in section["runs"]], folder, f"{TITLES[section['name']]}: test split")
    if section["cold"]:
        pd.DataFrame([{"model": r.result.model, **r.result.metrics} for r in section["cold"]]).to_csv(
            folder / "cold_start.csv", index=False)


# -- the report ----------------------------------------------------------------------------------------
COLUMNS = ("recall@20", "ndcg@20", "precision@20", "hit@20", "mrr", "coverage@20", "recall@10", "ndcg@10",
           "catalogue ndcg@20", "rmse", "mae")


def table(runs: list[Run], with_training: bool = True) -> pd.DataFrame:
    rows = []
    for r in runs:
        row = {"model": r.result.model, **{c: round(r.result.metrics[c], 4) for c in COLUMNS if c in r.result.metrics}}
        if with_training:
            row |= {"train s": round(r.result.train_seconds, 1),
                    "to best s": round(r.best_seconds, 1) if r.best_seconds is not None else "",
                    "peak MiB": round(r.peak_mib),
                    **({"GPU MiB": round(r.gpu_peak_mib) if r.gpu_peak_mib is not None else ""}
                       if any(o.gpu_peak_mib for o in runs) else {}),
                    "β": r.beta if r.beta is not None else "", "γ": r.gamma if r.gamma is not None else "",
                    "best epoch": _epoch(r.result.best_epoch)}
        rows.append(row)
    return pd.DataFrame(rows)


def training_goal(section: dict, kgrec: Run) -> str:
    """The goal line of HetRec's KGRec training time (best validation score within 600 s)."""
    return (f"- training on {section.get('device') or '?'}: KGRec on {TITLES[section['name']]} reached its best validation score (epoch "
            f"{kgrec.result.best_epoch}) after {kgrec.best_seconds:.0f} s, {kgrec.result.train_seconds:.0f} s with the "
            f"patience that confirmed it (goal: best score within 600 s: {'met' if kgrec.best_seconds <= 600 else 'MISSED'})")


def ratio_interval(users: dict[str, pd.DataFrame], ours: str, theirs: str, metric: str) -> tuple[float, float, str] | None:
    """The paired bootstrap 95 % interval of ``ours``' mean ``metric`` over ``theirs``' (the same test users),
    and its text; None when one of them has no per-user values (a section measured before they were kept)."""
    if ours not in users or theirs not in users:
        return None
    pair = users[ours].merge(users[theirs], on="user", suffixes=("", "_b"), validate="one_to_one")
    if len(pair) != len(users[ours]) or len(pair) != len(users[theirs]):
        raise SystemExit(f"per-user values of {ours} and {theirs} are for different users: not one split")
    low, high = paired_ratio_interval(pair[metric].to_numpy(), pair[f"{metric}_b"].to_numpy())
    return low, high, f"95 % interval {low:.3f}–{high:.3f}× over the {len(pair):,} test users, paired bootstrap"


def goal_ratio(ratio: float) -> str:
    """A ratio to the best baseline as the report prints it: three digits, four where it is within rounding
    of :data:`GOAL_RATIO` (so 1.0499 does not read as a 1.050 that missed)."""
    return f"{ratio:.{4 if abs(ratio - GOAL_RATIO) < 5e-4 else 3}f}"


def goals(section: dict) -> list[str]:
    by_key = {r.key: r.result.metrics for r in section["runs"]}
    users = {r.key: r.per_user for r in section["runs"] if r.per_user is not None}
    lines = []
    schedule = section.get("schedule") or {}
    trained = any(r.result.best_epoch is not None for r in section["runs"])
    if trained and {"epochs", "eval_every", "patience"} <= schedule.keys():  # early stopping, or the cap?
        last_chance = schedule["epochs"] - schedule["eval_every"] * schedule["patience"]
        capped = [f"{r.result.model} (best epoch {r.result.best_epoch})" for r in section["runs"]
                  if r.result.best_epoch is not None and r.result.best_epoch > last_chance]
        lines.append(f"- convergence: every trained model stopped by early stopping, before the cap of {schedule['epochs']} epochs"
                     if not capped else f"- convergence: **stopped by the epoch cap ({schedule['epochs']}), maybe still "
                     f"improving**: {', '.join(capped)}")
    if "kgrec" in by_key:
        ours = by_key["kgrec"]
        for metric in ("ndcg@20", "recall@20"):
            base = {k: m[metric] for k, m in by_key.items() if k in BASELINES}
            if base:
                best = max(base, key=base.get)
                ratio = ours[metric] / base[best] if base[best] else float("inf")
                interval = ratio_interval(users, "kgrec", best, metric)
                verdict = "met" if ratio >= GOAL_RATIO else "MISSED"
                if interval and ratio >= GOAL_RATIO > interval[0]:
                    verdict += f", though the interval reaches below {GOAL_RATIO}×"
                lines.append(f"- {metric}: KGRec {ours[metric]:.4f} vs best baseline {best} {base[best]:.4f} → "
                             f"**{goal_ratio(ratio)}×**{f' ({interval[2]})' if interval else ''} "
                             f"(goal ≥ {GOAL_RATIO}×: {verdict})")
        kgrec = next(r for r in section["runs"] if r.key == "kgrec")
        if section["name"] == "hetrec-lastfm" and kgrec.best_seconds is not None:
            lines.append(training_goal(section, kgrec))
        for key, what in (("kgrec-no-text", "text"), ("kgrec-no-kg", "the knowledge graph"),
                          ("kgrec-kg-shuffled", "the knowledge graph's true links (vs shuffled)"),
                          ("kgrec-no-neighbourhood", "the neighbourhood channel"),
                          ("kgrec-uniform-negatives", "dynamic negative sampling (vs uniform negatives)"),
                          ("kgrec-no-time", "the interactions' times (the EASE channel's time kernel)"),
                          ("kgrec-entity-ids", "id embeddings for shared entities only (vs for every entity)"),
                          ("kgrec-channel", "the graph network's score (its embeddings, beside the EASE channel)")):
            if key in by_key:
                delta = ours["ndcg@20"] - by_key[key]["ndcg@20"]
                rel = delta / by_key[key]["ndcg@20"] if by_key[key]["ndcg@20"] else float("nan")
                interval = ratio_interval(users, "kgrec", key, "ndcg@20")
                shown = (f"; 95 % interval {interval[0] - 1:+.1%} to {interval[1] - 1:+.1%}"
                         f"{', which holds 0' if interval[0] <= 1 <= interval[1] else ''}" if interval else "")
                lines.append(f"- {what} adds {delta:+.4f} nDCG@20 ({rel:+.1%}{shown}) over KGRec without it")
    rated = {k: m for k, m in by_key.items() if "rmse" in m}
    if rated:
        lines.append("- ratings (test RMSE / MAE): " + ", ".join(f"{k} {m['rmse']:.4f} / {m['mae']:.4f}" for k, m in rated.items())
                     + (f"; the rating loss changes KGRec's nDCG@20 by {by_key['kgrec-rating']['ndcg@20'] - by_key['kgrec']['ndcg@20']:+.4f}"
                        if "kgrec-rating" in by_key and "kgrec" in by_key else ""))
    cold = {r.key: r.result.metrics for r in section["cold"]}
    if "kgrec" in cold:
        ours = cold["kgrec"]["ndcg@20"]
        if "popularity" in cold:
            pop = cold["popularity"]["ndcg@20"]
            if pop > 0:
                ratio = ours / pop
                lines.append(f"- cold start: KGRec nDCG@20 {ours:.4f} vs Popularity {pop:.4f} → **{ratio:.1f}×** "
                             f"(goal ≥ {GOAL_COLD_VS_POPULARITY}×: {'met' if ratio >= GOAL_COLD_VS_POPULARITY else 'MISSED'})")
            else:  # held-out items have no training interactions, so no popularity: a ratio would mean nothing
                lines.append(f"- cold start: KGRec nDCG@20 {ours:.4f}; Popularity scores {pop:.4f} on items it has never "
                             "seen, so the goal's ratio to it is not meaningful here")
        if "text" in cold:
            text = cold["text"]["ndcg@20"]
            lines.append(f"- cold start: KGRec {ours:.4f} vs text-only {text:.4f} "
                         f"(goal: above: {'met' if ours > text else 'MISSED'})")
        if "catalogue ndcg@20" in cold["kgrec"]:
            strict = {k: m["catalogue ndcg@20"] for k, m in cold.items() if "catalogue ndcg@20" in m}
            lines.append("- cold start, whole catalogue ranked: " + ", ".join(f"{k} {v:.4f}" for k, v in strict.items()))
    return lines


def write_docs(sections: list[dict], args: argparse.Namespace, config: KGRecConfig, train: TrainConfig, seconds: float) -> None:
    if not args.docs:
        return
    docs = Path(args.docs)
    docs.parent.mkdir(parents=True, exist_ok=True)
    image = docs.parent / "img" / "quality.png"
    plot(sections, image)
    out = [
        "# Results: KGRec against baselines, on the same split",
        "",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- command: `python {' '.join(shlex.quote(a) for a in sys.argv)}` ({seconds / 60:.0f} min)",
        (f"- gathered by `--report-only` from saved sections (each says where and when it was measured) on "
         f"{platform.platform()}; kgrec {__version__}, torch {torch.__version__}" if args.report_only else
         f"- machine: {platform.platform()}, {torch.get_num_threads()} torch threads, "
         f"{'CPU only' if train.device == 'cpu' else 'training on ' + train.device}; kgrec {__version__}, "
         f"torch {torch.__version__}"),
        *([f"- {args.note}"] if args.note else []),
        f"- KGRec: {json.dumps(config.as_dict())}; training {json.dumps(train.as_dict())}",
        "",
        "**Protocol.** Implicit feedback: every user–item interaction is a positive. Per-user random split, seed 0: "
        "20 % of each user's interactions are test, 10 % validation, the rest training (a user with few "
        "interactions keeps them in training). Every model trains on the training part only; the trained ones "
        "early-stop on validation nDCG@20 and keep their best weights. Full ranking of the whole catalogue "
        "with the user's training and validation items excluded. Baselines: Popularity, ItemKNN (cosine, "
        "k=100, shrink 10), EASE (Steck 2019; its L2 weight chosen on validation among 100, 200, 500, 1000, 2000), "
        "MF-BPR and LightGCN (3 layers, 64 dimensions), trained with the same schedule as KGRec "
        f"(Adam, lr {train.lr}, batches of {train.batch_size}, up to {train.epochs} epochs, validation every "
        f"{train.eval_every}, patience {train.patience}), text-only (cosine of the user's mean item text vector).",
        "",
        "**Intervals.** Where a goal or an ablation line gives a 95 % interval, it is a paired bootstrap over the "
        "test users (5,000 resamples of the users, both models' nDCG@20 or Recall@20 together, percentile "
        "interval of the ratio of the means; `kgrec.model.metrics.paired_ratio_interval`). It measures how much "
        "of a difference could come from which users the split happened to test, not the spread over training "
        "seeds, which it leaves out (one seed per model). Each section's per-user values are in "
        f"`benchmarks/results/quality/<dataset>/{PER_USER_FILE}`; models measured before they were kept have none "
        "and no interval.",
        "",
        "**Cold start.** 10 % of the items that have text or knowledge links lose all their training and "
        "validation interactions to the test split, and another 10 % (disjoint: the cold validation items) lose "
        "their training interactions to the validation split, so that what a model tunes for cold items "
        "(KGRec's γ and δ) is chosen on items it never trained on; models are retrained and rank the held-out test "
        "items for the users who interacted with them; only the cold items count as relevant. "
        "γ is the weight of KGRec's text channel for cold items (the `KGRec` class docstring), chosen on the "
        "validation pairs on cold items when there are enough, else on pseudo-cold items; each table says "
        "which. `catalogue ndcg@20` is the "
        "stricter protocol: the whole catalogue is ranked (less training and validation items), so a cold item "
        "must also beat the items with interaction history. δ is KGRec's cold lift, a shift of the cold items' "
        "scores against the warm ones chosen on the whole catalogue's validation ranking (the `KGRec` class "
        "docstring); it moves the catalogue ranking, not the order of the cold items among themselves.",
        "",
        f"![nDCG@20 per model and dataset]({image.relative_to(docs.parent)})",
        "",
    ]
    for section in sections:
        c = section["counts"]
        out += [f"## {TITLES[section['name']]}", "",
                *([f"Measured {section['measured_at']} on {section.get('device') or '?'}."] if section.get("measured_at") else []),
                *([f"Schedule: {json.dumps(section['schedule'])}."] if section.get("schedule") else []),
                f"{c['users']:,} users, {c['items']:,} items, {c['entities']:,} entities, {c['knowledge']:,} item–entity "
                f"links over {c['relations']} relations; interactions: {c['train']:,} train, {c['val']:,} validation, "
                f"{c['test']:,} test. Training curves: `{section['folder'] / 'curves.png'}`.", "",
                markdown_table(table(section["runs"])), "", *gamma_bases(section["runs"])]
        if section["cold"]:
            other = section.get("cold_measured")
            out += ["Cold start (held-out items only)" + (
                        f", measured apart from the table above: {other['measured_at']} on {other['device']}, schedule "
                        f"{json.dumps(other['schedule'])}:" if other else ":"),
                    "", markdown_table(table(section["cold"])), "", *gamma_bases(section["cold"])]
        out += ["Goals and ablations:", "", *goals(section), ""]
    if args.compare_out and args.compare_out.resolve() != args.out.resolve():
        out += device_report(args.compare_out, sections)
    docs.write_text("\n".join(out))
    log(f"written: {docs}, {image}")


def gamma_bases(runs: list[Run]) -> list[str]:
    """One line saying what each KGRec variant chose its γ (and its cold lift δ) on, and one saying what its EASE
    channel chose (nothing for sections saved before these were kept)."""
    said = [f"{r.result.model} {r.gamma_basis}" for r in runs if r.gamma_basis]
    channels = [f"{r.result.model}: {r.channel}" for r in runs if r.channel]
    return ([f"γ chosen on: {'; '.join(said)}.", ""] if said else []) + (
        [f"EASE channel chose on validation: {'; '.join(channels)}.", ""] if channels else [])


def _epoch(epoch: int | None) -> int | str:
    """A best epoch for a table: blank for untrained models (a None in the column made pandas show 92 as 92.0)."""
    return "" if epoch is None else int(epoch)


def device_report(folder: Path, main_sections: list[dict]) -> list[str]:
    """The sections measured on another device (another ``--out``: say, 2 CPU cores beside a GPU), with
    each model's training time and nDCG@20 there beside the main tables' figures for the same model."""
    other_sections = merged_sections(folder, []) if folder.is_dir() else []
    if not other_sections:
        return []
    main = {(s["name"], r.key): (s, r) for s in main_sections for r in s["runs"]}
    rows = []
    for section in other_sections:
        for r in section["runs"]:
            there = main.get((section["name"], r.key))
            row = {"dataset": TITLES[section["name"]], "model": r.result.model,
                   "device": section.get("device") or "?", "train s": round(r.result.train_seconds, 1),
                   "to best s": round(r.best_seconds, 1) if r.best_seconds is not None else "",
                   "best epoch": _epoch(r.result.best_epoch), "peak MiB": round(r.peak_mib),
                   "ndcg@20": round(r.result.metrics["ndcg@20"], 4)}
            if there:
                s, m = there
                row |= {"main: device": s.get("device") or "?", "main: train s": round(m.result.train_seconds, 1),
                        "main: to best s": round(m.best_seconds, 1) if m.best_seconds is not None else "",
                        "main: GPU peak MiB": round(m.gpu_peak_mib) if m.gpu_peak_mib is not None else "",
                        "main: best epoch": _epoch(m.result.best_epoch),
                        "main: ndcg@20": round(m.result.metrics["ndcg@20"], 4)}
            rows.append(row)
    timing = [training_goal(s, r) for s in other_sections for r in s["runs"]
              if r.key == "kgrec" and s["name"] == "hetrec-lastfm" and r.best_seconds is not None]
    for section in other_sections:  # KGRec there against the main tables' best baseline (same split only)
        there = next((t for t in main_sections if t["name"] == section["name"]), None)
        ours = next((r for r in section["runs"] if r.key == "kgrec"), None)
        if there is None or ours is None or there["counts"].get("split") != section["counts"].get("split"):
            continue
        for metric in ("ndcg@20", "recall@20"):
            base = {r.key: r.result.metrics[metric] for r in there["runs"] if r.key in BASELINES}
            if base:
                best = max(base, key=base.get)
                ratio = ours.result.metrics[metric] / base[best] if base[best] else float("inf")
                timing.append(f"- {TITLES[section['name']]}, {metric}: KGRec here {ours.result.metrics[metric]:.4f} vs the "
                              f"main table's best baseline {best} {base[best]:.4f} → {goal_ratio(ratio)}× "
                              f"(goal ≥ {GOAL_RATIO}×: {'met' if ratio >= GOAL_RATIO else 'MISSED'})")
    split_note = all(s["counts"].get("split") == next((t["counts"].get("split") for t in main_sections
                                                         if t["name"] == s["name"]), None) for s in other_sections)
    return ["## The same models on another device", "",
            f"Measured {', '.join(sorted({s['measured_at'] or '?' for s in other_sections}))} (`{folder}`), "
            f"schedule {json.dumps(other_sections[0].get('schedule'))}; "
            + ("the same split as the tables above. " if split_note else "**another split than the tables above.** ")
            + "Training time and peak memory there, beside the main tables' run of the same model "
            "(floating-point order differs between devices, so the trained weights and the figures differ a little).",
            "", markdown_table(pd.DataFrame(rows)), "", *timing, *([""] if timing else [])]


def plot(sections: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, max(1, len(sections)), figsize=(5 * max(1, len(sections)), 4), squeeze=False)
    for ax, section in zip(axes[0], sections):
        names = [r.result.model for r in section["runs"]]
        values = [r.result.metrics["ndcg@20"] for r in section["runs"]]
        colours = ["tab:red" if r.key.startswith("kgrec") else "tab:gray" for r in section["runs"]]
        ax.barh(names[::-1], values[::-1], color=colours[::-1])
        ax.set(title=TITLES[section["name"]], xlabel="nDCG@20 (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
