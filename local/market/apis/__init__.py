"""One module per simulated upstream API; each builds response bodies in that API's real format."""
