"""Operations an operator runs: backing up and restoring a SQLite database, re-embedding with a new model."""
