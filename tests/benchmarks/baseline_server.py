"""The irreducible work of an XML intake in Python: read the body, parse it with lxml (hardened
as the hub's parser is), answer a constant. The intake benchmark's yardstick."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from lxml import etree

REPLY = b"<ok/>"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    etree.fromstring(body, _PARSER)
    return web.Response(body=REPLY, content_type="application/xml")


_PARSER = _parser()


def serve(app: web.Application, port: int) -> None:
    """Serve ``app`` as the hub serves itself: uvloop when there is one, no access log."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    app = web.Application()
    app.router.add_post("/ncpdp/script", handle)
    serve(app, int(sys.argv[1]))


if __name__ == "__main__":
    main()
