"""System 2, trade ingestion (DESIGN.md §9, docs/trades.md): traders' own trades, from every source.

A platform module never imports this package; it builds on the platform like the crawler does.

    models.py      the domain records: Fill (one execution), Trade (the original round-trip record)
    errors.py      TradeRejected: a source record that can never become a fill, with its field
    normalize.py   pure normalisers: manual entry, CSV rows, Binance myTrades / executionReport, Bybit v5
    pairing.py     FIFO pairing of a (user, symbol)'s fills into entry/exit/pnl trades
    contracts.py   the wire records (raw-trades envelope, Trade) and their JSON Schemas / Avro schema
    settings.py    TRADES_* settings (topics, token key, limits)
    auth.py        bearer tokens: HMAC-signed JWTs whose subject is the user id
    api.py, app.py the trades HTTP API (docs/trades-openapi.yaml)
    store.py       every query on the trade tables (db/migrations/0012_trades.sql)
    normalizer.py  the normaliser's pipeline: raw-trades record in, fills and trades stored, trades published
"""
