"""Wall time of ``cascade bench bfcl``, split into loading, single-tier scoring and engine runs.

Side by side in one run: the engine's replay of every cascade against the bare
cost of checking the same recorded outputs with the same contracts (no engine),
so the ratio shows what driving the real engine adds.
Run: ``python benchmarks/bench_wall.py [--data PATH]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cascade.bench import bfcl
from cascade.bench.common import tiers_for
from cascade.settings import data_dir
from cascade.types import Completion, Usage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    root = args.data or data_dir() / bfcl.DATASET

    t0 = time.perf_counter()
    data = bfcl.load(root)
    loaded = time.perf_counter()
    engine_s = checks_s = 0.0
    calls = 0
    for ladder, models in bfcl.ladders(data, None).items():
        tiers = tiers_for(models, data.prices)
        t1 = time.perf_counter()
        bfcl.run_ladder(data, ladder, tiers)
        engine_s += time.perf_counter() - t1
        contracts = [bfcl.item_contract(item) for item in data.items]
        t2 = time.perf_counter()
        for item, contract in zip(data.items, contracts, strict=True):
            for tier in tiers:
                recording = data.store.get(tier.model, item.item_id)
                contract.check_sync(Completion(recording.text, Usage(0, 0), tier.model, recording.tool_calls))
                calls += 1
        checks_s += time.perf_counter() - t2
    print(f"items: {len(data.items)}, models: {len(data.models)}")
    print(f"load:                          {loaded - t0:6.2f} s")
    print(f"singles + cascades per ladder: {engine_s:6.2f} s")
    print(f"bare contract checks of every recorded output ({calls}): {checks_s:6.2f} s")
    print(f"bench wall time (load + runs): {loaded - t0 + engine_s:6.2f} s")
    print(f"ratio (bench run / bare checks of the same outputs): {engine_s / checks_s:.1f}x")


if __name__ == "__main__":
    main()
