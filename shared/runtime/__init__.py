"""The edge between HTTP/CloudEvents and the domain: request parsing, routing, verdicts, adapters."""
