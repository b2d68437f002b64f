"""Tortoise ORM models, queries and aerich migrations."""
