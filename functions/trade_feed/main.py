"""trade_feed function: WS /ws/trades/{user_id}, a user's enriched trades and alerts as they commit.

An ASGI application (`asgi`): functions-framework cannot serve WebSockets, so `make up` runs it
under uvicorn and the cluster under func-python's ASGI server (docs/trades.md, "The WebSocket
feed"). The server: shared/trades/feed_server.py; the protocol: shared/trades/feed_stream.py.
Run locally: uvicorn --app-dir functions/trade_feed main:asgi --ws websockets-sansio --port 8097
"""

import functions_framework

from shared.runtime.app import ff_entry
from shared.trades.feed_server import TradeFeedApp, TradeFeedFunction

app = TradeFeedApp()
asgi = TradeFeedFunction(app)
# functions-framework serves this function's HTTP routes only (health, metrics), never the feed.
trade_feed = functions_framework.http(ff_entry(app))
