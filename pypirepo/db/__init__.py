"""The database's plumbing: the engine, the schema's migrations, and how every process
that shares the database learns of a change (serials, and the beacon beside a SQLite
file). The tables are in pypirepo.models; the statements in pypirepo.metadata."""
