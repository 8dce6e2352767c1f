"""SQL storage, the system of record: models, engine and sessions, queries, migrations.

`session.Database` is the entry point (it migrates on start); `queries` holds every query the
service layer runs, so SQLite and Postgres differences stay inside this package.
"""
