"""The ``/_simulator/`` admin routes of every simulator: create an account, reveal its trades."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Body, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

Request = TypeVar("Request", bound=BaseModel)

Created = tuple[str, str, int]
"""``(api_key, api_secret, trades)`` of a new account, as the create route answers them."""


def install_account_admin(
    app: FastAPI,
    prefix: str,
    request: type[Request],
    create: Callable[[Request], Created],
    trades_of: Callable[[str], list[dict[str, Any]] | None],
    listing: str = "trades",
) -> None:
    """``POST {prefix}`` creates an account from a ``request`` body (``ValueError`` is a 400);
    ``GET {prefix}/{key}/{listing}`` answers ``trades_of(key)``, 404 for an unknown key."""

    async def create_account(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            parsed = request.model_validate(body)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        try:
            # Large histories take seconds to generate: keep the event loop serving.
            api_key, api_secret, trades = await anyio.to_thread.run_sync(create, parsed)
        except ValueError as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        return {"api_key": api_key, "api_secret": api_secret, "trades": trades}

    async def account_trades(key: str) -> Response:
        trades = trades_of(key)
        if trades is None:
            raise HTTPException(status_code=404, detail="unknown API key")
        return JSONResponse(trades)

    app.add_api_route(prefix, create_account, methods=["POST"])
    app.add_api_route(f"{prefix}/{{key}}/{listing}", account_trades, methods=["GET"])
