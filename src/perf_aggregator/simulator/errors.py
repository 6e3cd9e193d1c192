"""Binance's error answers: ``{"code": -1022, "msg": "..."}`` with the HTTP status Binance uses.

The messages are Binance's own wording (spot API error-code list), since
clients, ccxt included, match on them.
"""

from __future__ import annotations

NUMBER_RANGE = "^[0-9]{1,20}$"
SYMBOL_RANGE = r"^[\w\-._&&[^a-z]]{1,50}$"
SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'


class BinanceError(Exception):
    """An error answer; raise it from a handler and the app serves it."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, int | str]:
        """The JSON body."""
        return {"code": self.code, "msg": self.msg}


def bad_request(code: int, msg: str) -> BinanceError:
    """HTTP 400, Binance's status for request errors (-11xx, -1021, -1022)."""
    return BinanceError(400, code, msg)


def mandatory(name: str) -> BinanceError:
    """-1102: a required parameter is missing or empty."""
    return bad_request(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str, legal: str) -> BinanceError:
    """-1100: a parameter's value does not match its pattern."""
    return bad_request(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def not_valid(name: str) -> BinanceError:
    """-1130: a well-formed value out of the parameter's range (e.g. ``limit=1001``)."""
    return bad_request(-1130, f"Data sent for parameter '{name}' is not valid.")


# Fixed answers as (status, code, msg): ``raise BinanceError(*INVALID_SYMBOL)``.
DUPLICATE_PARAMETER = (400, -1101, "Duplicate values for a parameter detected.")
INVALID_INTERVAL = (400, -1120, "Invalid interval.")
INVALID_SYMBOL = (400, -1121, "Invalid symbol.")
WINDOW_TOO_LONG = (400, -1127, "More than 24 hours between startTime and endTime.")
BAD_COMBINATION = (400, -1128, "Combination of optional parameters invalid.")
RECV_WINDOW_TOO_LONG = (400, -1131, "recvWindow must be less than 60000")
TIMESTAMP_AHEAD = (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
TIMESTAMP_OUTSIDE = (400, -1021, "Timestamp for this request is outside of the recvWindow.")
BAD_SIGNATURE = (400, -1022, "Signature for this request is not valid.")
BAD_KEY_FORMAT = (401, -2014, "API-key format invalid.")
REJECTED_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")


def unread_parameters(read: int, sent: int) -> BinanceError:
    """-1104: the request carries parameters the endpoint does not take."""
    return bad_request(
        -1104,
        f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.",
    )


def too_much_weight(limit: int) -> BinanceError:
    """HTTP 429: the IP spent its weight budget for this minute."""
    return BinanceError(
        429,
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    )


def banned(until_ms: int) -> BinanceError:
    """HTTP 418: the IP kept sending after 429s and is banned until ``until_ms``."""
    return BinanceError(
        418,
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    )
