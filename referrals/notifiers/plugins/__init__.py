"""Our own Apprise plugins, one module per service in Apprise's style: Zalo ZNS (`zalo_zns`)
and eSMS brandname SMS (`esms`). `register()` adds them to Apprise's plugin manager, so their
URLs (`zns://...`, `esms://...`) work wherever an Apprise URL does."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def register() -> None:
    """Make Apprise know our schemes (once per process)."""
    from apprise.manager_plugins import NotificationManager

    from referrals.notifiers.plugins.esms import NotifyESMS
    from referrals.notifiers.plugins.zalo_zns import NotifyZaloZNS

    manager = NotificationManager()  # a singleton: Apprise's own registry
    for plugin in (NotifyZaloZNS, NotifyESMS):
        manager.add(plugin)
