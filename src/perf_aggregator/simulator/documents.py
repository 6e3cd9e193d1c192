"""JSON documents of the simulated exchange, in Binance's field names and types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from perf_aggregator.simulator.accounts import Account
from perf_aggregator.simulator.market import ASSETS, Market
from perf_aggregator.simulator.units import fmt8, to_units

_MAX_PRICE = to_units("1000000")
_MAX_QTY = to_units("9000")
_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]
# coin -> (display name, network, withdrawal fee, minimum withdrawal); one network
# per coin is enough for ccxt's fetch_currencies.
_COINS: dict[str, tuple[str, str, str, str]] = {
    "BNB": ("BNB", "BSC", "0.0005", "0.01"),
    "BTC": ("Bitcoin", "BTC", "0.000012", "0.0001"),
    "ETH": ("Ethereum", "ETH", "0.0008", "0.0016"),
    "SOL": ("Solana", "SOL", "0.001", "0.01"),
    "USDC": ("USD Coin", "ETH", "1", "10"),
    "USDT": ("TetherUS", "ETH", "1", "10"),
}


def rate_limits(weight_limit: int) -> list[dict[str, Any]]:
    """``rateLimits`` of the spot ``exchangeInfo``."""
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]


def symbol_info(market: Market) -> dict[str, Any]:
    """One element of ``exchangeInfo.symbols``."""
    step = fmt8(market.step_units)
    permissions = ["SPOT", "MARGIN"] if market.margin else ["SPOT"]
    return {
        "symbol": market.symbol,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": _ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": market.margin,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(market.tick_units),
                "maxPrice": fmt8(_MAX_PRICE),
                "tickSize": fmt8(market.tick_units),
            },
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": fmt8(_MAX_QTY), "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": fmt8(_MAX_QTY // 10),
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(market.min_notional_units),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [permissions],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": _STP_MODES,
    }


def exchange_info(markets: Iterable[Market], weight_limit: int, now_ms: int) -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo``."""
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": rate_limits(weight_limit),
        "exchangeFilters": [],
        "symbols": [symbol_info(m) for m in markets],
    }


def futures_exchange_info(now_ms: int, *, usd_margined: bool) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo`` or ``/dapi/v1/exchangeInfo``: valid, without markets."""
    document: dict[str, Any] = {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ],
        "exchangeFilters": [],
        "symbols": [],
    }
    if usd_margined:
        document |= {"futuresType": "U_MARGINED", "assets": []}
    return document


def account_info(account: Account, now_ms: int, *, omit_zero: bool) -> dict[str, Any]:
    """``GET /api/v3/account``; ``canWithdraw`` etc. are the account's, not the key's, as on Binance."""
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": "0.00100000",
            "taker": "0.00100000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": account.update_time(now_ms),
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": fmt8(free), "locked": "0.00000000"}
            for asset, free in account.balances.items()
            if free or not omit_zero
        ],
        "permissions": ["SPOT"],
        "uid": account.uid,
    }


def api_restrictions(account: Account) -> dict[str, Any]:
    """``GET /sapi/v1/account/apiRestrictions``: the key's permissions.

    Binance only lets a key withdraw when it is restricted to trusted IPs.
    """
    return {
        "ipRestrict": account.can_withdraw,
        "createTime": account.created_ms,
        "enableReading": True,
        "enableWithdrawals": account.can_withdraw,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enableSpotAndMarginTrading": account.can_trade,
        "enablePortfolioMarginTrading": False,
    }


def coin_configs(account: Account) -> list[dict[str, Any]]:
    """``GET /sapi/v1/capital/config/getall``: every coin with the account's balance and one network."""
    out = []
    for coin in ASSETS:
        name, network, fee, minimum = _COINS[coin]
        out.append(
            {
                "coin": coin,
                "depositAllEnable": True,
                "withdrawAllEnable": True,
                "name": name,
                "free": fmt8(account.balances.get(coin, 0)),
                "locked": "0",
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": False,
                "trading": True,
                "networkList": [
                    {
                        "network": network,
                        "coin": coin,
                        "withdrawIntegerMultiple": "0.00000001",
                        "isDefault": True,
                        "depositEnable": True,
                        "withdrawEnable": True,
                        "depositDesc": "",
                        "withdrawDesc": "",
                        "specialTips": "",
                        "specialWithdrawTips": "",
                        "name": network,
                        "resetAddressStatus": False,
                        "addressRegex": "",
                        "memoRegex": "",
                        "withdrawFee": fee,
                        "withdrawMin": minimum,
                        "withdrawMax": "9999999999.99999999",
                        "withdrawInternalMin": "0.00000001",
                        "depositDust": "0.00000001",
                        "minConfirm": 1,
                        "unLockConfirm": 0,
                        "sameAddress": False,
                        "estimatedArrivalTime": 5,
                        "busy": False,
                        "contractAddressUrl": "",
                        "contractAddress": "",
                        "denomination": 1,
                    }
                ],
            }
        )
    return out


def margin_pairs(markets: Iterable[Market], *, isolated: bool) -> list[dict[str, Any]]:
    """``GET /sapi/v1/margin/allPairs`` (cross) or ``/sapi/v1/margin/isolated/allPairs``."""
    out = []
    for index, market in enumerate(markets):
        if not market.margin:
            continue
        pair: dict[str, Any] = {
            "base": market.base,
            "isBuyAllowed": True,
            "isMarginTrade": True,
            "isSellAllowed": True,
            "quote": market.quote,
            "symbol": market.symbol,
        }
        if not isolated:
            pair = {"id": 351637150141315861 + index, **pair}
        out.append(pair)
    return out
