"""Decimal strings on the wire (API.md): exact, whatever the caller's decimal context."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from perf_aggregator.formats import plain, usd

LONG = "123456789012345678901234567890.123456789012345678901234567890123456789"
"""69 significant digits: more than the default context's 28 and the metrics' 60."""


@pytest.mark.parametrize("prec", [5, 28, 60])
def test_plain_is_exact_whatever_the_context(prec: int) -> None:
    with localcontext() as context:
        context.prec = prec
        assert plain(Decimal(LONG)) == LONG
        assert plain(Decimal("-1.500E+3")) == "-1500"
        assert plain(Decimal("-0E-12")) == "0"
        assert plain(Decimal("7.10000")) == "7.1"


@pytest.mark.parametrize("prec", [5, 28, 60])
def test_usd_rounds_half_even_to_8_places_and_nothing_else(prec: int) -> None:
    with localcontext() as context:
        context.prec = prec
        assert usd(Decimal(LONG)) == "123456789012345678901234567890.12345679"
        assert usd(Decimal("9.99E+59")) == "999" + "0" * 57
        assert usd(Decimal("0.000000025")) == "0.00000002"
        assert usd(Decimal("-0.000000035")) == "-0.00000004"
        assert usd(Decimal("-0.000000004")) == "0"
