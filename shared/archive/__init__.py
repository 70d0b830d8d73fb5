"""Bronze: every raw upstream response and job message archived in S3-compatible storage.

`bronze` writes and lists the archive; `archived_upstream` serves archived responses back to
the upstream clients, so a system can re-run its live pipeline on them (the price crawler's
`python -m shared.crawler replay`). See docs/data-layers.md.
"""
