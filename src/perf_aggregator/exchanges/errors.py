"""What can go wrong when talking to an exchange, classified for the callers.

Messages are written by us and never carry request URLs, headers or bodies,
so no credential can leak through them.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base class of every connector error."""


class CredentialsRejected(ExchangeError):
    """The exchange refused the key (unknown key, bad signature, key disabled)."""


class KeyNotReadOnly(ExchangeError):
    """The exchange reports that the key can withdraw funds."""


class ExchangeUnavailable(ExchangeError):
    """The exchange could not be reached or answered with a transient failure."""

    def __init__(self, message: str, retry_after_s: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(ExchangeUnavailable):
    """The exchange asked us to slow down (HTTP 429/418, ``Retry-After``)."""


class ExchangeRequestError(ExchangeError):
    """The exchange rejected a request as malformed: a bug on our side, not the user's."""


MALFORMED: tuple[type[Exception], ...] = (KeyError, IndexError, TypeError, ValueError, ArithmeticError)
"""What reading a garbled exchange answer raises (a field missing, a row too short, a value of the
wrong type or not a number): the connectors turn it into :class:`ExchangeUnavailable`, and the
page is read again later."""

MALFORMED_KEY_MESSAGE = "the API secret is not in the form this exchange uses"
"""Why a secret was refused when the exchange's request signer could not use it."""


def raised_while_signing(exc: BaseException) -> bool:
    """Whether ``exc`` came out of a ccxt exchange's ``sign``: the secret could not be used
    (not base64, not a PEM key, ...) and no request was sent."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "sign" and str(frame.f_globals.get("__name__", "")).startswith("ccxt."):
            return True
        tb = tb.tb_next
    return False
