"""The domain: offices, applications, families and dossiers, and the blob store."""
