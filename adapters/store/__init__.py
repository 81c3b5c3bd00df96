"""Stores behind engine.service.ports: SQL (SQLAlchemy) and in-memory."""
