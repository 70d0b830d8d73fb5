"""System 4, stock analytics: Finnhub quotes through bronze, silver and a dbt gold layer.

`models.py` holds its records, `symbols.py` the instrument keys, `market_hours.py` the US
equity session in US/Eastern and `normalize_finnhub.py` the pure rule that turns one raw
`/api/v1/quote` answer into a quote, "no data" or a rejection with its reason. Nothing here
knows Kafka, HTTP or PostgreSQL (DESIGN.md §11).
"""
