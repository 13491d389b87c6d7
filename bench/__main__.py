"""`make bench [BENCH=scale|bulk,export,import|all]`: run benchmarks, print their rows (scale writes its own)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil

import bench
from bench.common import HEADER, running_app


def main() -> None:
    names = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules(bench.__path__)
                   if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="scale", help=f"comma list of {', '.join(names)}, or all")
    args = parser.parse_args()
    print(HEADER)
    for name in names if args.only == "all" else [n for n in args.only.split(",") if n]:
        module = importlib.import_module(f"bench.bench_{name}")
        with running_app() as b:  # each benchmark on its own empty table
            module.run(b)
            for figure in b.figures:
                print(figure.row(), flush=True)


if __name__ == "__main__":
    main()
