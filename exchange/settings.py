"""Settings live with the domain so that workers read the same ones; re-exported here."""

from dossiers.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError"]
