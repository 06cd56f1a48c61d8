"""Diagnostic: what the cold items' text-channel weight γ costs KGRec in the full (warm) ranking.

KGRec chooses γ on pseudo-cold items ranked among themselves (:class:`kgrec.model.kgrec_net.KGRec`); this
trains KGRec once on a dataset snapshot and prints validation and test nDCG@20 of the whole-catalogue
ranking for every γ in ``GAMMAS`` — cold items compete there with the warm ones, which the choice cannot see.

Usage: ``.venv/bin/python benchmarks/gamma_warm.py SNAPSHOT.pt [--device cuda] [--threads 2]`` (a snapshot from
``benchmarks/quality.py --save-snapshots DIR``). A run on 2 CPU cores: ``benchmarks/results/gamma-warm/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import load_snapshot, parse_args, schedule  # noqa: E402

from kgrec.model.evaluate import evaluate  # noqa: E402
from kgrec.model.kgrec_net import GAMMAS, KGRec, KGRecConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, (item_vectors, entity_vectors) = load_snapshot(args.snapshot)
    train = schedule(parse_args(["--device", args.device]))  # quality.py's default schedule
    began = time.perf_counter()
    model = KGRec(item_vectors, entity_vectors, KGRecConfig(), train).fit(data)
    print(f"{args.snapshot.name}: trained in {time.perf_counter() - began:.0f} s, best epoch {model.best_epoch}, "
          f"beta {model.beta}, gamma chosen on pseudo-cold items {model.gamma}", flush=True)
    cold = model.net.cold_map[0] if model.net.cold_map is not None else torch.empty(0, dtype=torch.long)
    share = torch.isin(data.test[1], cold).float().mean().item()
    print(f"cold items (content, no training interaction): {cold.numel()}; share of test pairs on them: {share:.3f}")
    for gamma in GAMMAS:
        model.gamma = gamma
        val = evaluate(model, data, "val", ks=(20,))["ndcg@20"]
        test = evaluate(model, data, "test", ks=(20,))
        print(f"gamma {gamma}: val ndcg@20 {val:.4f}  test ndcg@20 {test['ndcg@20']:.4f}  recall@20 {test['recall@20']:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
