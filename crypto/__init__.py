"""Signatures, keys, digests and the audit chain.

Pure functions and small classes: no HTTP, no database. Every import of ``jose``
in the project lives in :mod:`crypto.jws` or :mod:`crypto.tokens`.
"""
