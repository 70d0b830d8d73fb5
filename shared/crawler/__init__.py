"""The price crawler: exact USDT prices, token profiles and audits for the top 100 and trending tokens.

Its own domain (`domain/`, pure), job messages (`jobs`), one pipeline per job (`pipelines/`),
the job runner that records each job in `job_logs` (`job_runner`), its tables (`store`), the
gold candles (`gold`, `candle_fold`), the replay from bronze (`replay`) and the quotes API
(`quotes/`), on the platform of `shared` (runtime, Kafka, upstream clients, database,
observability, archive). Other systems import nothing of it but its documented read side
(`quotes/reads.py` and the quotes API, docs/api.md).
"""
