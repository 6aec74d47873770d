"""Settings and the province's data; imports nothing else of the engine."""

from referrals.config.province import ConfigError, Province, load_province
from referrals.config.settings import Settings, get_settings

__all__ = ["ConfigError", "Province", "Settings", "get_settings", "load_province"]
