"""Countersign's crypto library: pure functions on bytes, no Flask, database, logging or environment."""
