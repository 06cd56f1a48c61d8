"""Speed and memory: full-batch against neighbour-sampled KGRec training steps, on synthetic graphs of growing size.

For each size (``--users``; items are half as many, entities a tenth of the items) a random graph is built:
``--per-user`` interactions per user with Zipf-like item popularity, three knowledge links per item, random
384-dimensional text vectors. Then, each in a fresh process (so that one mode's memory does not count in
the other's), KGRec trains ``--steps`` steps:

- *full-batch* (the baseline): BPR batches of ``--full-batch`` pairs; every step propagates the whole graph;
- *sampled*: :class:`~torch_geometric.loader.LinkNeighborLoader` batches of ``--batch`` pairs, at most
  ``--num-neighbors`` neighbours per node, edge type and hop (:mod:`kgrec.model.sampled`).

Both draw ``--negatives`` candidates per pair (dynamic negative sampling). Reported per run: seconds per
step, training pairs per second, the seconds one epoch over all pairs takes at that rate, and the peak
resident memory the steps added (peak RSS minus RSS before the first step, sampled every 10 ms). Quality is
not measured here (``benchmarks/variants.py`` trains both to convergence on a real dataset).

Usage: ``.venv/bin/python benchmarks/sampled.py [--users 25000 100000] [--steps 20] [--out DIR]``; writes
``sampled.md``, ``sampled.csv`` and ``sampled.png`` into ``--out`` (default ``benchmarks/results/sampled``).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = ("users", "items", "pairs", "mode", "batch", "s/step", "pairs/s", "epoch s", "peak MiB")


def synthetic(users: int, per_user: int, seed: int):
    """A random RecData and text vectors: Zipf-like item popularity, 3 links per item over 4 relations."""
    import numpy as np
    import torch

    from kgrec.model.data import RecData

    items, entities = users // 2, max(users // 20, 10)
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    chosen = rng.choice(items, size=(users, per_user), p=popularity / popularity.sum())
    pairs = np.unique(np.stack([np.repeat(np.arange(users), per_user), chosen.ravel()]), axis=1)
    links = {f"r{k}": torch.from_numpy(np.stack([np.arange(items), rng.integers(0, entities, items)]))
             for k in range(3)}
    empty = torch.empty(2, 0, dtype=torch.long)
    data = RecData(users, items, entities, torch.from_numpy(pairs), empty, empty, torch.ones(pairs.shape[1]),
                   item_entity=links)
    text = torch.from_numpy(rng.standard_normal((items, 384), dtype=np.float32))
    entity_text = torch.from_numpy(rng.standard_normal((entities, 384), dtype=np.float32))
    return data, text, entity_text


def one(args: argparse.Namespace) -> dict:
    """One (size, mode) run, in this process: the row of ``COLUMNS``."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import RssSampler, release_free_memory

    from kgrec.model.kgrec_net import KGRec, KGRecConfig, KGRecNet
    from kgrec.model.sampled import epoch_batches, link_loader, propagation_graph
    from kgrec.model.training import BPRSampler, TrainConfig

    torch.set_num_threads(args.threads)
    data, text, entity_text = synthetic(args.one_users, args.per_user, args.seed)
    sampled = args.mode == "sampled"
    batch = args.batch if sampled else args.full_batch
    config = KGRecConfig(num_neighbors=args.num_neighbors if sampled else 0, negatives=args.negatives)
    model = KGRec(text, entity_text, config, TrainConfig(batch_size=batch, seed=args.seed))
    model.relation_index = {name: k for k, name in enumerate(sorted(data.item_entity))}
    model.net = net = KGRecNet(data.num_users, data.num_items, data.num_entities, 3, text, entity_text, config)
    net.attach(data, model.relation_index)
    generator = torch.Generator().manual_seed(args.seed)
    if sampled:
        loader = link_loader(propagation_graph(net.adjacency, data.num_users, data.num_items), data,
                             args.num_neighbors, config.num_layers, batch, args.negatives, args.seed)
        loss_of, batches = model._sampled_loss(generator), (args_ for _, args_ in epoch_batches(loader))
    else:
        loss_of = model._full_loss(generator, data, None)
        batches = BPRSampler(data.train_matrix, generator).batches(batch, args.negatives)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    net.train()
    release_free_memory()
    with RssSampler() as memory:
        began, steps = time.perf_counter(), 0
        for arguments in batches:
            loss = loss_of(*arguments)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == args.steps:
                break
        seconds = (time.perf_counter() - began) / steps
    pairs = data.train.shape[1]
    return {"users": data.num_users, "items": data.num_items, "pairs": pairs, "mode": args.mode, "batch": batch,
            "s/step": seconds, "pairs/s": batch / seconds, "epoch s": pairs / (batch / seconds),
            "peak MiB": (memory.peak - memory.before) / 2**20}


def fmt(column: str, value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if column == "s/step" else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1024, help="training pairs per sampled step")
    parser.add_argument("--full-batch", type=int, default=8192, help="training pairs per full-batch step")
    parser.add_argument("--num-neighbors", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sampled"))
    parser.add_argument("--one-users", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("full-batch", "sampled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(one(args)))
        return
    rows = []
    print(" | ".join(COLUMNS), flush=True)
    for users in args.users:
        for mode in ("full-batch", "sampled"):
            command = [sys.executable, __file__, "--one-users", str(users), "--mode", mode, *sys.argv[1:]]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{mode} on {users:,} users failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(" | ".join(fmt(c, rows[-1][c]) for c in COLUMNS), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "sampled.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    settings = (f"{args.steps} steps per run, {args.negatives} negative candidates per pair, sampled: "
                f"{args.num_neighbors} neighbours per node, edge type and hop; {args.threads} torch threads")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " ---: |" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(c, r[c]) for c in COLUMNS) + " |" for r in rows]
    (args.out / "sampled.md").write_text(
        f"# Full-batch vs neighbour-sampled training steps\n\n`{' '.join(['benchmarks/sampled.py', *sys.argv[1:]])}`"
        f" ({settings})\n\n" + "\n".join(lines) + "\n")
    plot(rows, args.out / "sampled.png")
    print(f"written: {args.out / 'sampled.md'}, {args.out / 'sampled.csv'}, {args.out / 'sampled.png'}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("full-batch", "sampled"):
        mine = [r for r in rows if r["mode"] == mode]
        for ax, column in zip(axes, ("peak MiB", "epoch s")):
            ax.plot([r["pairs"] for r in mine], [r[column] for r in mine], marker="o", label=mode)
            ax.set_xlabel("training pairs")
            ax.set_ylabel(column)
            ax.set_xscale("log")
            ax.legend()
    fig.suptitle("KGRec training: full-batch vs neighbour-sampled")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
