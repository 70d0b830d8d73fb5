"""price-crawler functions: the project's shared package (config, domain, upstream clients, storage, runtime)."""
