"""Diagnostic: what the cold items' text-channel weight γ costs KGRec in the full (warm) ranking.

KGRec chooses γ on cold items ranked among themselves (:class:`kgrec.model.kgrec_net.KGRec`); this trains
KGRec once on a dataset snapshot and prints validation and test nDCG@20 of the whole-catalogue ranking —
where cold items compete with the warm ones — for every γ in ``GAMMAS``, for the channel KGRec uses (it
reorders the cold items and keeps their per-user mean and spread) and, side by side, for the earlier one
(γ · z_u(text) added to every cold item, which lifts them as a group). The γ table is without the cold
lift δ (``KGRec.lift``, a shift of every cold item chosen on the whole catalogue's validation ranking); a
second table gives the same figures for every δ in ``LIFTS``, at the γ KGRec chose.

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
from kgrec.model.kgrec_net import GAMMAS, LIFTS, KGRec, KGRecConfig, _standardise  # noqa: E402


class Lifted:
    """The earlier text channel: KGRec's score at γ = 0 plus γ · z_u(text) on every cold item."""

    def __init__(self, model: KGRec, gamma: float) -> None:
        self.model, self.gamma = model, gamma

    def score(self, users: torch.Tensor) -> torch.Tensor:
        kept, self.model.gamma = self.model.gamma, 0.0
        try:
            scores = self.model.score(users)
        finally:
            self.model.gamma = kept
        cold = self.model.net.cold_map[0].to(scores.device)
        scores[:, cold] += self.gamma * _standardise(self.model.text.score(users.cpu()).to(scores.device))[:, cold]
        return scores


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
          f"beta {model.beta}, gamma {model.gamma} chosen on {model.gamma_basis}, lift {model.lift} "
          f"({model.lift_basis})", flush=True)
    chosen_gamma, chosen_lift, model.lift = model.gamma, model.lift, 0.0
    cold = model.net.cold_map[0] if model.net.cold_map is not None else torch.empty(0, dtype=torch.long)
    share = torch.isin(data.test[1], cold).float().mean().item()
    print(f"cold items (content, no training interaction): {cold.numel()}; share of test pairs on them: {share:.3f}")
    print("gamma | reorder (KGRec): val ndcg@20, test ndcg@20, test recall@20 | lift (earlier): val, test ndcg@20, recall@20")
    for gamma in GAMMAS:
        model.gamma = gamma
        lifted = Lifted(model, gamma)
        figures = [evaluate(m, data, split, ks=(20,)) for m in (model, lifted) for split in ("val", "test")]
        print(f"gamma {gamma}: reorder {figures[0]['ndcg@20']:.4f} {figures[1]['ndcg@20']:.4f} {figures[1]['recall@20']:.4f}"
              f"  | lift {figures[2]['ndcg@20']:.4f} {figures[3]['ndcg@20']:.4f} {figures[3]['recall@20']:.4f}", flush=True)
    model.gamma = chosen_gamma
    print(f"cold lift delta at gamma {chosen_gamma} (chosen: {chosen_lift}): val ndcg@20, test ndcg@20, test recall@20")
    for lift in LIFTS:
        model.lift = lift
        val, test = (evaluate(model, data, split, ks=(20,)) for split in ("val", "test"))
        print(f"delta {lift}: {val['ndcg@20']:.4f} {test['ndcg@20']:.4f} {test['recall@20']:.4f}", flush=True)


if __name__ == "__main__":
    main()
