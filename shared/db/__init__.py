"""PostgreSQL access: connection pool, migrations, and the repositories of each table."""
