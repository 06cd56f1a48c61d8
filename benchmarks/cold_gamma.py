"""Diagnostic, not a benchmark: does the gamma KGRec chooses on validation pick a good weight for the cold
items' text channel?

For each dataset: KGRec trained on quality.py's cold-start data (quality.py's schedule), the gamma it chose
and what it chose it on, and the test cold-start nDCG@20 for every gamma in GAMMAS, beside text-only.
Reads snapshots written by ``quality.py --save-snapshots``::

    python benchmarks/cold_gamma.py --snapshots DIR [--device cuda] [--datasets movielens,recbole,hetrec-lastfm]

``benchmarks/results/cold-gamma-gpu/log.txt`` is a run on an NVIDIA H200 of an earlier version (gamma added
to every cold item, chosen on pseudo-cold items, before the split had cold validation items);
``benchmarks/results/cold-gamma/log.txt`` a run of this one on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import quality as Q  # noqa: E402

from kgrec.model.baselines import TextSimilarity  # noqa: E402
from kgrec.model.evaluate import evaluate_cold_start  # noqa: E402
from kgrec.model.kgrec_net import GAMMAS, KGRec, KGRecConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=Path, required=True, help="folder of <dataset>.pt (--save-snapshots)")
    parser.add_argument("--datasets", default="movielens,recbole,hetrec-lastfm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="(default: quality.py's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.datasets.split(","):
        data, vectors = Q.load_snapshot(args.snapshots / f"{name}.pt")
        cold_data, cold = Q.cold_split(data, Q.COLD_SHARE)
        text = evaluate_cold_start(TextSimilarity(vectors[0]).fit(cold_data), cold_data, cold, ks=(20,))["ndcg@20"]
        began = time.perf_counter()
        schedule = Q.schedule(Q.parse_args(["--device", args.device] + (["--epochs", str(args.epochs)] if args.epochs else [])))
        model = KGRec(*vectors, KGRecConfig(), schedule).fit(cold_data)
        seconds = time.perf_counter() - began
        chosen, per = model.gamma, {}
        for gamma in GAMMAS:
            model.gamma = gamma
            per[gamma] = round(evaluate_cold_start(model, cold_data, cold, ks=(20,))["ndcg@20"], 4)
        print(f"{name}: fit {seconds:.0f} s, best epoch {model.best_epoch}, beta {model.beta}, chosen gamma {chosen} "
              f"on {model.gamma_basis}; "
              f"test cold ndcg@20 by gamma {per}; text-only {text:.4f}", flush=True)


if __name__ == "__main__":
    main()
