"""Diagnostic: KGRec variants (architecture or schedule changes) beside the default, on one dataset snapshot.

Each variant is ``NAME=JSON`` with ``KGRecConfig`` fields, and optionally ``TrainConfig`` fields under the key
``"train"`` (e.g. ``negatives16='{"negatives": 16}'``, ``wd='{"train": {"weight_decay": 0.001}}'``); the
default KGRec (quality.py's schedule) is always trained first, in the same run, and a baseline of
:mod:`kgrec.model.harness` (``--baseline lightgcn``) may be trained beside it with each variant's schedule. Prints
and writes (``--out``: ``variants.md``, ``variants.csv``) validation and test nDCG@20, test Recall@20, test
nDCG@20 without the neighbourhood channel (β = 0), training seconds, the seconds to the best epoch and the peak
resident memory the training added (``peak MiB``: the process's peak RSS during ``fit`` minus its RSS before,
freed heap handed back first; sampled every 10 ms).

Usage: ``.venv/bin/python benchmarks/variants.py SNAPSHOT.pt [NAME=JSON ...] [--baseline lightgcn] [--out DIR]``
(a snapshot from ``benchmarks/quality.py --save-snapshots DIR``). Runs on 2 CPU cores:
``benchmarks/results/variants/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RssSampler, release_free_memory, write_table  # noqa: E402
from quality import load_snapshot, parse_args, schedule  # noqa: E402

from kgrec.errors import KgrecError  # noqa: E402
from kgrec.model.evaluate import evaluate  # noqa: E402
from kgrec.model.harness import build  # noqa: E402
from kgrec.model.kgrec_net import KGRec, KGRecConfig  # noqa: E402
from kgrec.model.training import TrainConfig  # noqa: E402

COLUMNS = ("variant", "config", "val ndcg@20", "ndcg@20", "recall@20", "ndcg@20 (β=0)", "β", "train s", "to best s",
           "best epoch", "peak MiB")


def parse_variant(text: str) -> tuple[str, dict, dict]:
    """``NAME=JSON`` → ``(name, KGRecConfig fields, TrainConfig fields)``; a :class:`KgrecError` naming the
    problem otherwise."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise KgrecError(f"variant {text!r} is not NAME=JSON")
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError as err:
        raise KgrecError(f"variant {name!r}: {raw!r} is not JSON ({err})") from None
    if not isinstance(fields, dict):
        raise KgrecError(f"variant {name!r}: {raw!r} is not a JSON object")
    train = fields.pop("train", {})
    if not isinstance(train, dict):
        raise KgrecError(f"variant {name!r}: 'train' must be a JSON object of TrainConfig fields, not {train!r}")
    for given, known, what in ((fields, KGRecConfig, "KGRecConfig"), (train, TrainConfig, "TrainConfig")):
        unknown = sorted(set(given) - set(known.__dataclass_fields__))
        if unknown:
            raise KgrecError(f"variant {name!r}: {', '.join(unknown)} not a field of {what} "
                             f"({', '.join(known.__dataclass_fields__)})")
    try:  # bad values fail here, before any training
        KGRecConfig(**fields), TrainConfig(**train)
    except (KgrecError, TypeError) as err:
        raise KgrecError(f"variant {name!r}: {err}") from None
    return name, fields, train


def measure(name: str, model, data, config: str) -> dict:
    """Fit ``model`` and return (and print) its row of ``COLUMNS``."""
    release_free_memory()
    with RssSampler() as memory:
        began = time.perf_counter()
        model.fit(data)
        seconds = time.perf_counter() - began
    test, val = evaluate(model, data, "test", ks=(20,)), evaluate(model, data, "val", ks=(20,))
    row = {"variant": name, "config": config, "val ndcg@20": val["ndcg@20"], "ndcg@20": test["ndcg@20"],
           "recall@20": test["recall@20"], "ndcg@20 (β=0)": "", "β": "", "train s": seconds, "to best s": "",
           "best epoch": getattr(model, "best_epoch", ""), "peak MiB": (memory.peak - memory.before) / 2**20}
    history = getattr(model, "history", [])
    best = [r.seconds for r in history if r.epoch == row["best epoch"]]
    row["to best s"] = best[0] if best else ""
    if isinstance(model, KGRec):
        beta, model.beta = model.beta, 0.0
        row["ndcg@20 (β=0)"], model.beta = evaluate(model, data, "test", ks=(20,))["ndcg@20"], beta
        row["β"] = f"{beta:g}"
    print(" | ".join(fmt(c, row[c]) for c in COLUMNS), flush=True)
    return row


def fmt(column: str, value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if column.endswith((" s", "MiB")) else f"{value:.4f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("variants", nargs="*", help="NAME=JSON (KGRecConfig fields; TrainConfig fields under 'train')")
    parser.add_argument("--baseline", help="also train this baseline with every schedule a variant uses (e.g. lightgcn)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/variants"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", help="most epochs (default: quality.py's)")
    args = parser.parse_args()
    try:
        variants = [parse_variant(v) for v in args.variants]
    except KgrecError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    data, (item_vectors, entity_vectors) = load_snapshot(args.snapshot)
    default = schedule(parse_args(["--device", args.device, *(["--epochs", args.epochs] if args.epochs else [])]))
    print(f"{args.snapshot.stem}: " + " | ".join(COLUMNS), flush=True)
    rows = [measure("default", KGRec(item_vectors, entity_vectors, KGRecConfig(), default), data, "{}")]
    schedules = {"{}": default}
    for name, fields, train in variants:
        config, schedule_ = KGRecConfig(**fields), replace(default, **train)
        rows.append(measure(name, KGRec(item_vectors, entity_vectors, config, schedule_), data,
                            json.dumps({**fields, **({"train": train} if train else {})})))
        schedules.setdefault(json.dumps(train), schedule_)
    if args.baseline:
        for key, schedule_ in schedules.items():
            model = build(args.baseline, item_vectors, entity_vectors, KGRecConfig(), schedule_, False)
            rows.append(measure(args.baseline, model, data, key if key != "{}" else "{} (default schedule)"))
    stem = args.out / f"variants-{args.snapshot.stem}"
    write_table(stem, f"# KGRec variants on {args.snapshot.stem}", COLUMNS, rows, fmt)
    print(f"written: {stem}.md, {stem}.csv")


if __name__ == "__main__":
    main()
