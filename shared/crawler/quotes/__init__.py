"""The quotes API: exact latest prices, token profiles with audits, candles, KPIs, volatility.

`reads` holds the read models (token references, profiles, lists), `api` the HTTP API
(validation, routes, JSON forms) and `app` the function's HTTP surface. See docs/api.md.
"""
