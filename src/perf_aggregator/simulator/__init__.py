"""Exchange simulators: wire-faithful stand-ins for the exchanges' REST APIs, served on loopback."""

from perf_aggregator.simulator.accounts import Account, RawTrade, generate_account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.market import MARKETS, Market, PriceModel
from perf_aggregator.simulator.serve import run

__all__ = [
    "MARKETS",
    "Account",
    "Market",
    "PriceModel",
    "RawTrade",
    "SimulatedBinance",
    "create_binance_app",
    "generate_account",
    "run",
]
