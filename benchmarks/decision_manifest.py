"""The decision view of a manifest: choose on dev, never on test.

    python benchmarks/decision_manifest.py MANIFEST.jsonl OUT.jsonl [--tune-size N] [--train-size N] [--seed S]

Every default and setting of the project is chosen on data that the final numbers never
see (docs/decisions/). This writes a manifest in which

* the dataset's **dev** split becomes the split that is scored (named ``test`` so the seed
  study and the evaluator score it unchanged),
* a **tuning** split of N videos (default: as many as dev) is carved from train, stratified
  by label with a fixed seed, and named ``dev``: it is what training selects checkpoints
  and stops early on,
* the rest of train stays ``train``, and the dataset's test split is left out entirely,

so a decision study (``python -m evaluation.seed_study --manifest OUT.jsonl ...``) cannot
read a test video. Rows without labels (file lists) are left out too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wmmt.manifest import load_manifest, write_manifest


def decision_view(manifest: pd.DataFrame, tune_size: int | None = None, seed: int = 0,
                  train_size: int | None = None) -> pd.DataFrame:
    """dev -> scored ("test"), a label-stratified carve of train -> selection ("dev"), test dropped;
    ``train_size``: keep only that many of the other train videos (label-stratified), for a question of
    how much data a setting needs (the demo's size, docs/decisions/demo.md)."""
    train = manifest[manifest["split"] == "train"]
    dev = manifest[manifest["split"] == "dev"]
    if dev.empty or train.empty:
        raise ValueError("the manifest needs a train and a dev split")
    size = len(dev) if tune_size is None else tune_size
    if not 0 < size < len(train):
        raise ValueError(f"tuning split of {size} videos from a train split of {len(train)}")
    rng = np.random.default_rng(seed)
    picked = _stratified(train, size, rng)
    kept = train.index.difference(picked)
    if train_size is not None:
        if not 0 < train_size <= len(kept):
            raise ValueError(f"a train split of {train_size} videos from the {len(kept)} left after the tuning split")
        kept = pd.Index(_stratified(train.loc[kept], train_size, rng))
    view = pd.concat([train.loc[kept.union(picked)], dev]).copy()
    view.loc[dev.index, "split"] = "test"
    view.loc[picked, "split"] = "dev"
    return view.reset_index(drop=True)


def _stratified(rows: pd.DataFrame, size: int, rng) -> list[int]:
    """``size`` row labels of ``rows`` drawn without replacement, each label in its share."""
    fractions = rows["label"].value_counts(normalize=True).sort_index()
    picked: list[int] = []
    for label, share in fractions.items():
        found = rows.index[rows["label"] == label].to_numpy()
        picked.extend(rng.choice(found, size=min(len(found), round(share * size)), replace=False).tolist())
    return picked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("out")
    parser.add_argument("--tune-size", type=int, default=None, help="videos carved from train (default: dev's size)")
    parser.add_argument("--train-size", type=int, default=None, help="train videos kept (default: all the rest)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        view = decision_view(load_manifest(args.manifest), args.tune_size, args.seed, args.train_size)
    except (OSError, ValueError) as exc:
        print(f"error: {args.manifest}: {exc}", file=sys.stderr)
        return 2
    write_manifest(view, args.out)
    counts = view["split"].value_counts().to_dict()
    print(f"{args.out}: train {counts.get('train', 0)}, tuning (as dev) {counts.get('dev', 0)}, "
          f"dev (as test) {counts.get('test', 0)}; the test split left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
