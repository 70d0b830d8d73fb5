"""Bronze: raw upstream responses archived in S3 (`bronze`), and silver rebuilt from them (`replay`).

`python -m shared.archive replay --from ... --to ...` re-derives `tokens` and `token_prices`
for a time range from the archived responses. See docs/data-layers.md.
"""
