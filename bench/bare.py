"""The ceiling of bench-ingest: a bare Starlette endpoint that checks the HMAC and answers 202.

Same stack and the same uvicorn settings as `python -m bot serve` (bot/cli.py), and the
same signature check (`bot.webhook.verify`), but no parsing, no filter, no store, no log
line. Whatever tembo-dispatch does on top of this is what its ratio to this target costs.

    python -m bench.bare --port 3001 --secret S
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import webhook
from bot.settings import Secret


def create_bare_app(secret: str) -> Starlette:
    secrets = (Secret(secret),)

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            webhook.verify(body, request.headers.get("x-hub-signature-256"), secrets)
        except webhook.BadSignature as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        return JSONResponse({"status": "queued"}, status_code=202)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/webhook", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    # The settings of bot.cli.serve, so only the application differs.
    uvicorn.run(
        create_bare_app(args.secret),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
