"""Bronze: raw upstream responses archived in S3 (`bronze`), and silver rebuilt from them (`replay`).

`python -m shared.archive replay --from ... --to ...` re-derives `tokens`, `token_prices` and
`token_audits` for a time range from the archived job messages and responses. See
docs/data-layers.md.
"""
