"""Channels as Apprise URLs: the province's URL templates, expanded with secrets and a recipient.

`${NAME}` reads the environment and `${prefect:NAME}` a Prefect Secret block (through the
`secrets` callable a flow passes in: this module does not import Prefect). `{phone}` (Zalo,
SMS) and `{email}` are the recipient, URL-quoted. Our own plugins (plugins/: Zalo ZNS, eSMS)
are registered with Apprise before any URL is read. Secret values never appear in what we log or store:
`masked()` uses Apprise's own privacy rendering and `scrub()` blanks every expanded secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from referrals.config.province import Delivery

if TYPE_CHECKING:  # a type only: Apprise is imported when a message is sent (it is slow to load)
    from apprise import NotifyBase

REF = re.compile(r"\$\{([^}]+)\}")
Secrets = Callable[[str], str | None]


class ChannelError(Exception):
    """A channel's URL cannot be built: a missing secret, a missing recipient, not Apprise."""


def environment(name: str) -> str | None:
    """From the environment, else the settings file as Settings reads it; Prefect blocks only in
    a flow."""
    if name.startswith("prefect:"):
        return None
    return os.environ.get(name) or _dotenv().get(name) or None


@lru_cache(maxsize=1)
def _dotenv() -> dict[str, str | None]:
    from dotenv import dotenv_values

    from referrals.config.settings import settings_file

    path = settings_file()
    return dict(dotenv_values(path)) if path else {}


@dataclass
class Channels:
    delivery: Delivery
    secrets: Secrets = environment
    _urls: dict[str, str] = field(default_factory=dict, init=False)
    _secret_values: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        for kind, template in self.delivery.channels.items():
            url = self._expand(kind, template).strip()
            if not url:
                continue  # off: its messages wait
            placeholder = "{email}" if kind == "email" else "{phone}"
            if placeholder not in url:
                if kind == "email" and url.startswith(("mailto://", "mailtos://")):
                    url += ("&" if "?" in url else "?") + "to={email}"
                else:
                    raise ChannelError(f"{kind} channel: the URL must contain {placeholder}")
            if url.startswith(("mailto://", "mailtos://")) and "format=" not in url:
                url += "&format=text"  # our bodies are plain text: keep their line breaks
            self._urls[kind] = url

    def _expand(self, kind: str, template: str) -> str:
        def value(m: re.Match[str]) -> str:
            name = m[1]
            found = self.secrets(name)
            if found is None:
                if m[0] == template.strip():
                    return ""  # the whole URL is one unset variable: the channel is off
                where = "as a Prefect Secret block" if name.startswith("prefect:") else ""
                raise ChannelError(f"{kind} channel: ${{{name}}} is not set {where}".strip())
            if len(found) >= 4:
                self._secret_values.add(found)
            return found

        return REF.sub(value, template)

    @property
    def kinds(self) -> list[str]:
        """The channels that are on."""
        return sorted(self._urls)

    def url(self, kind: str, *, phone: str | None = None, email: str | None = None) -> str:
        recipient = email if kind == "email" else phone
        if not recipient:
            raise ChannelError(f"the recipient has no {'e-mail' if kind == 'email' else 'phone'}")
        template = self._urls[kind]
        return template.replace("{phone}", quote(recipient, safe="")).replace(
            "{email}", quote(recipient, safe="")
        )

    def check(self) -> None:
        """Raise ChannelError unless Apprise accepts every channel that is on."""
        for kind in self.kinds:
            url = self.url(kind, phone="+84905000000", email="check@example.vn")
            if instantiate(url) is None:
                raise ChannelError(f"{kind} channel: Apprise does not accept {self.scrub(url)}")

    def plugin(self, kind: str) -> NotifyBase | None:
        """The channel's plugin as configured (for a made-up recipient): it reads the channel's
        receipts; None when the channel is off here."""
        if kind not in self._urls:
            return None
        return instantiate(self.url(kind, phone="+84905000000", email="check@example.vn"))

    def scrub(self, text: str) -> str:
        """`text` with every secret value we expanded replaced by ****."""
        for secret in sorted(self._secret_values, key=len, reverse=True):
            text = text.replace(secret, "****").replace(quote(secret, safe=""), "****")
        return text


def instantiate(url: str) -> NotifyBase | None:
    """A fresh Apprise plugin for `url` (fresh: a reused one throttles), or None if invalid."""
    import apprise

    from referrals.notifiers.plugins import register

    register()  # our own schemes: zns://, esms://

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def masked(plugin: NotifyBase) -> str:
    """The plugin's URL with passwords and tokens hidden, for logs."""
    return plugin.url(privacy=True)
