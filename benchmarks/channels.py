"""KGRec's neighbourhood channel, swapped after one training: ItemKNN, EASE, EASE with knowledge rows, with a
time kernel, with both.

KGRec is trained once (quality.py's schedule) from a snapshot of the quality benchmark's split; then each
channel is fitted on the training interactions and KGRec's share β of it (and the cold items' shift δ with it)
re-chosen on validation. Each channel is also ranked alone, a baseline measured in the same run. Prints and writes (``--out``:
``channels-<dataset>.md`` and ``.csv``) validation and test nDCG@20, test Recall@20, the channel's L2,
knowledge and time weights, its fitting seconds (the validation searches included) and the peak resident memory the
fit added.

Usage: ``.venv/bin/python benchmarks/channels.py SNAPSHOT.pt [--out DIR] [--threads 1]`` (a snapshot from
``benchmarks/quality.py --save-snapshots DIR``). Results: ``benchmarks/results/variants/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RssSampler, log, release_free_memory, write_table  # noqa: E402
from quality import load_snapshot, parse_args, schedule  # noqa: E402

from kgrec.model.baselines import EASE, KNOWLEDGE_WEIGHTS, TIME_WEIGHTS, ItemKNN  # noqa: E402
from kgrec.model.evaluate import evaluate  # noqa: E402
from kgrec.model.kgrec_net import KGRec, KGRecConfig  # noqa: E402

COLUMNS = ("model", "val ndcg@20", "ndcg@20", "recall@20", "β", "δ", "λ", "α", "α_t", "fit s", "peak MiB")
CHANNELS = {
    "ItemKNN": ItemKNN,
    "EASE": EASE,
    "EASE + knowledge rows": partial(EASE, knowledge_weights=KNOWLEDGE_WEIGHTS),
    "EASE + time kernel": partial(EASE, time_weights=TIME_WEIGHTS),
    "EASE + knowledge rows + time kernel": partial(EASE, knowledge_weights=KNOWLEDGE_WEIGHTS, time_weights=TIME_WEIGHTS),
}


def ranked(model, data) -> dict[str, float]:
    val, test = evaluate(model, data, "val", ks=(20,)), evaluate(model, data, "test", ks=(20,))
    return {"val ndcg@20": val["ndcg@20"], "ndcg@20": test["ndcg@20"], "recall@20": test["recall@20"]}


def fmt(column: str, value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if column.endswith(("MiB",)) else f"{value:.1f}" if column.endswith(" s") else f"{value:.4f}"
    return "" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/variants"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, (item_vectors, entity_vectors) = load_snapshot(args.snapshot)
    log(f"{args.snapshot.stem}: training KGRec once")
    began = time.perf_counter()
    model = KGRec(item_vectors, entity_vectors, KGRecConfig(), schedule(parse_args(["--device", "cpu"]))).fit(data)
    log(f"trained in {time.perf_counter() - began:.0f} s (best epoch {model.best_epoch})")
    rows = []
    for name, make in CHANNELS.items():
        release_free_memory()
        with RssSampler() as memory:
            began = time.perf_counter()
            channel = make().fit(data)
            seconds = time.perf_counter() - began
        lam, alpha = getattr(channel, "lam", None), getattr(channel, "knowledge_weight", None)
        alpha_t = getattr(channel, "time_weight", None)
        common = {"λ": f"{lam:g}" if lam else None, "α": f"{alpha:g}" if alpha is not None else None,
                  "α_t": f"{alpha_t:g}" if alpha_t is not None else None, "fit s": seconds, "peak MiB": (memory.peak - memory.before) / 2**20}
        rows.append({"model": f"{name} alone", **ranked(channel, data), "β": None, "δ": None, **common})
        model.knn = channel
        model._choose_mix(data)  # beta and the cold items' shift with it, then the shift again, as fit does
        if model.config.cold_lift:
            model.lift = model._choose_lift(data)
        rows.append({"model": f"KGRec, {name} channel", **ranked(model, data), "β": f"{model.beta:.2g}",
                     "δ": f"{model.lift:g}", **common})
        for row in rows[-2:]:
            log(" | ".join(fmt(c, row[c]) for c in COLUMNS))
    stem = args.out / f"channels-{args.snapshot.stem}"
    lines = write_table(stem, f"# KGRec's neighbourhood channels on {args.snapshot.stem}\n\nOne training, then each "
                        "channel fitted and β (and the cold items' shift δ with it) re-chosen on validation (`benchmarks/channels.py`).",
                        COLUMNS, rows, fmt)
    print("\n".join(lines))
    print(f"written: {stem}.md, {stem}.csv")


if __name__ == "__main__":
    main()
