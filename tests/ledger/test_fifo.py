from decimal import Decimal, localcontext

from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.trades import columns_of
from perf_aggregator.metrics.figures import Figures
from perf_aggregator.metrics.precision import CONTEXT, EXACT

from .factory import HOUR, ClosedTrade, apply_one, at, make_trade

T10 = at("2026-01-05T10:00:00")
ONE = Decimal(1)


def test_spot_sells_close_the_oldest_lots_first_and_split_them() -> None:
    book = FifoBook("spot")
    with localcontext(EXACT):
        assert apply_one(book, make_trade("1", "buy", "1", "100", T10), Decimal("0.1"), ONE) is None
        assert apply_one(book, make_trade("2", "buy", "2", "110", T10 + HOUR), Decimal("0.4"), ONE) is None
        first = apply_one(book, make_trade("3", "sell", "1.5", "120", T10 + 2 * HOUR), Decimal("0.3"), ONE)
        # lot 1, q = 1:   1 * (120 - 100) - 0.1 * 1 / 1 - 0.3 * 1 / 1.5     = 20 - 0.1 - 0.2 = 19.7
        # lot 2, q = 0.5: 0.5 * (120 - 110) - 0.4 * 0.5 / 2 - 0.3 * 0.5 / 1.5 = 5 - 0.1 - 0.1 = 4.8
        # basis 1 * 100 + 0.5 * 110 = 155; holding 1 * 2h + 0.5 * 1h = 2.5 h·BTC
        assert first == ClosedTrade(
            T10 + 2 * HOUR, Decimal("1.5"), Decimal("24.5"), Decimal("155"), Decimal(2.5 * HOUR)
        )
        assert [(lot.quantity, lot.price) for lot in book.lots] == [(Decimal("1.5"), Decimal("110"))]
        second = apply_one(book, make_trade("4", "sell", "2", "105", T10 + 3 * HOUR), Decimal("0.21"), ONE)
    # lot 2, q = 1.5: 1.5 * (105 - 110) - 0.4 * 1.5 / 2 - 0.21 * 1.5 / 2 = -7.5 - 0.3 - 0.1575 = -7.9575
    # basis 1.5 * 110 = 165; holding 1.5 * 2h; the other 0.5 finds no lot
    assert second == ClosedTrade(
        T10 + 3 * HOUR, Decimal("1.5"), Decimal("-7.9575"), Decimal("165"), Decimal(3 * HOUR)
    )
    assert book.lots == ()
    assert book.position == 0
    assert book.unmatched == Decimal("0.5")


def test_a_spot_sell_without_lots_is_unmatched_and_closes_nothing() -> None:
    book = FifoBook("spot")
    with localcontext(EXACT):
        assert apply_one(book, make_trade("1", "sell", "0.3", "100", T10), Decimal("0.03"), ONE) is None
    assert book.unmatched == Decimal("0.3")
    assert book.position == 0
    assert book.lots == ()


def test_swap_sell_opens_a_short_and_buy_closes_it_then_opens_a_long() -> None:
    book = FifoBook("swap")
    with localcontext(EXACT):
        assert apply_one(book, make_trade("1", "sell", "1", "50000", T10), Decimal(20), ONE) is None
        assert book.position == -1
        closed = apply_one(book, make_trade("2", "buy", "1.5", "48000", T10 + HOUR), Decimal("28.8"), ONE)
        # short q = 1: 1 * (50000 - 48000) - 20 * 1 / 1 - 28.8 * 1 / 1.5 = 2000 - 20 - 19.2 = 1960.8
        assert closed == ClosedTrade(T10 + HOUR, ONE, Decimal("1960.8"), Decimal(50000), Decimal(HOUR))
        assert book.position == Decimal("0.5")
        # the new long lot carries the rest of the trade's fee, 28.8 - 19.2, for its later fee shares
        (lot,) = book.lots
        assert (lot.quantity, lot.fee_usd) == (Decimal("0.5"), Decimal("9.6"))
        closed = apply_one(book, make_trade("3", "sell", "1", "49000", T10 + 2 * HOUR), Decimal("9.8"), ONE)
    # long q = 0.5: 0.5 * (49000 - 48000) - 28.8 * 0.5 / 1.5 - 9.8 * 0.5 / 1 = 500 - 9.6 - 4.9 = 485.5
    assert closed == ClosedTrade(
        T10 + 2 * HOUR, Decimal("0.5"), Decimal("485.5"), Decimal(24000), Decimal(0.5 * HOUR)
    )
    assert book.position == Decimal("-0.5")
    assert book.unmatched == 0


def test_the_fee_shares_of_a_lot_split_in_thirds_add_up_to_its_fee_exactly() -> None:
    # Each third's share, 1 * 1 / 3 and then the rest's half, is rounded to 60 digits; the last
    # piece is charged what remains of the fee, so the three add up to 1 exactly. Rounded at the
    # edge, a sum a few units of the 60th digit off its exact value could round the wrong way
    # when that value is a tie.
    book = FifoBook("spot")
    with localcontext(EXACT):
        apply_one(book, make_trade("1", "buy", "3", "100", T10), ONE, ONE)
        pieces = [
            apply_one(book, make_trade(str(k), "sell", "1", "100", T10 + k * HOUR), Decimal(0), ONE)
            for k in (2, 3, 4)
        ]
    shares = [closed.pnl_usd.copy_negate() for closed in pieces if closed is not None]
    assert len(shares) == 3
    assert shares[0] == CONTEXT.divide(1, 3)  # 0.333..., 60 digits
    assert EXACT.add(EXACT.add(shares[0], shares[1]), shares[2]) == 1
    assert book.lots == ()


def test_pnl_of_a_non_usd_quote_uses_the_closing_rate_and_basis_the_opening_rate() -> None:
    book = FifoBook("spot")
    symbol = "ETH/BTC"
    with localcontext(EXACT):
        apply_one(book, make_trade("1", "buy", "2", "0.05", T10, symbol=symbol), Decimal(4), Decimal(40000))
        closed = apply_one(
            book, make_trade("2", "sell", "2", "0.06", T10 + HOUR, symbol=symbol), Decimal(6), Decimal(50000)
        )
    # 2 * (0.06 - 0.05) BTC * 50000 - 4 - 6 = 990; basis 2 * 0.05 BTC * 40000 = 4000
    assert closed is not None
    assert (closed.pnl_usd, closed.cost_basis_usd) == (Decimal(990), Decimal(4000))


def test_closes_before_1970_keep_their_days_pnl() -> None:
    book, figures = FifoBook("spot"), Figures()
    start = at("1969-12-30T10:00:00")  # a negative timestamp, day -2
    run = [
        make_trade("1", "buy", "2", "100", start),
        make_trade("2", "sell", "1", "110", start + HOUR),  # +10 on day -2
        make_trade("3", "sell", "1", "90", start + 30 * HOUR),  # -10 on day -1
    ]
    with localcontext(EXACT):
        days = book.record(columns_of(run), [ONE] * 3, [ONE] * 3, figures)
    assert days == {-2: Decimal(10), -1: Decimal(-10)}
    assert figures.realized_pnl_usd == 0
