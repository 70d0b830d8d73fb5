"""Pure domain logic: no HTTP, Kafka or database here (docs/architecture.md).

Conventions shared by every normalizer (``normalize_*.py``):

- Input is upstream JSON as the clients decode it (numbers are ``Decimal``; numeric strings
  and ints are accepted too; floats are a bug, see `shared.wire`).
- Normalizers never raise on messy upstream data. A function over a batch returns
  ``(records, failures)``; a function over one item returns the record or a
  `shared.crawler.models.TokenFailure` with the reason. Exceptions are reserved for caller bugs
  (a float, a naive timestamp, an unknown chain passed by our own code).
"""
