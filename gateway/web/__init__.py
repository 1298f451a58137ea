"""Web pages: the web chat (a channel) and the secretariat's pages."""

from aiohttp import web

from gateway.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
