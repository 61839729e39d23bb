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


def main() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/ncpdp/script", handle)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
