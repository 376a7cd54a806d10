"""SQL storage: engine and sessions, migrations, ORM models, store locks and lookups."""
