"""The SQL index: SQLModel tables, the engine and migrations, ingest writes and QIDO queries."""
