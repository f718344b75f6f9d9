"""The office-side tool: what an office runs against the exchange, not part of the server.

``client`` (the HTTP client, folder preparation, signing and offline verification), ``st96_parser``
and ``st96_writer`` (WIPO ST.96 XML in and out), and the ``exchange office`` verbs (``cli``,
``st96_cli``). The server never imports this package; only the ``exchange`` command does."""
