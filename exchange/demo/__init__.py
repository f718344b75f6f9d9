"""``exchange demo``: the embedded exchange seeded with sample offices, keys, people and signed
dossiers. ``data`` (what is seeded), ``documents`` and ``pdf`` (the sample documents), ``seeder``
(the command: serve, seed, print the banner) and ``sink`` (the demo's webhook receiver, mounted
only by the demo). The server never imports this package; only the ``exchange`` command does."""
