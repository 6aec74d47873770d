"""Settings and the province's data; imports nothing else of the engine.

Names are loaded on first use (PEP 562), so reading the settings does not pay for the YAML schema.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from referrals.config.province import ConfigError, Province, load_province
    from referrals.config.settings import Settings, get_settings

_WHERE = {
    "ConfigError": "province",
    "Province": "province",
    "load_province": "province",
    "Settings": "settings",
    "get_settings": "settings",
}
__all__ = ["ConfigError", "Province", "Settings", "get_settings", "load_province"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(import_module(f"referrals.config.{_WHERE[name]}"), name)
