"""``python -m perf_aggregator.simulator --port 9100 --seed 42``: run the simulated Binance."""

from __future__ import annotations

import argparse

from perf_aggregator.simulator.binance import DEFAULT_WEIGHT_LIMIT
from perf_aggregator.simulator.serve import run

__all__ = ["main", "run"]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m perf_aggregator.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--seed", type=int, default=42, help="seed of the simulated markets' prices")
    parser.add_argument(
        "--weight-limit",
        type=int,
        default=DEFAULT_WEIGHT_LIMIT,
        help="request weight per IP per minute",
    )
    args = parser.parse_args(argv)
    run(args.host, args.port, args.seed, args.weight_limit)


if __name__ == "__main__":
    main()
