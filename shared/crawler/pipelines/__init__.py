"""Pipelines: one module per job, orchestrating upstream clients, domain logic and storage.

A pipeline takes a `JobContext` and returns a `JobOutcome`; it never sees HTTP or
CloudEvent types. The domain decisions it applies live in `shared.crawler.domain`.
"""
