"""Persistence ports and their adapters: Cosmos DB (cloud) and SQLite (embedded default)."""
