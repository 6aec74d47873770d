"""Every `REFERRALS_*` variable this version reads, so that `referrals upgrade-check` and
`referrals doctor` can name one it does not (a typo, or a setting an upgrade renamed or removed).

The settings object's fields (settings.py) are read from `REFERRALS_<FIELD>`; this module lists
the variables read anywhere else, each with who reads it. tests/cli/test_upgrade_check.py fails
when a `REFERRALS_*` name in referrals/, deploy/, tests/, scripts/ or benchmarks/ is in neither.
"""

from __future__ import annotations

import difflib

from referrals.config.settings import Settings

PREFIX = "REFERRALS_"

READ_ELSEWHERE: frozenset[str] = frozenset(
    {
        # settings.settings_file() and `referrals --settings FILE`: the settings file to read.
        "REFERRALS_SETTINGS_FILE",
        # The bundled province.yaml's channels (`${REFERRALS_SMS_URL}`), expanded by
        # notifiers/channels.py. A province's own ${NAMES} are known to doctor from its YAML.
        "REFERRALS_ZALO_URL",
        "REFERRALS_SMS_URL",
        "REFERRALS_EMAIL_URL",
        # notifiers/background.py: the Prefect global concurrency limit every delivery pass holds.
        "REFERRALS_GATEWAY_LIMIT",
        # deploy/prefect.yaml (the workers' working directory), deploy/systemd/referrals-worker@,
        # and doctor / upgrade-check (where deploy/prefect.yaml is).
        "REFERRALS_CHECKOUT",
        # cli/doctor.py: the work pool to look for live workers on.
        "REFERRALS_WORK_POOL",
        # deploy/systemd/referrals-web@.service: the web app's port on its machine.
        "REFERRALS_WEB_PORT",
        # cli/main.py and cli/errors.py: show the traceback instead of one line.
        "REFERRALS_DEBUG",
        # The tests: tests/conftest.py, tests/support/cluster.py, tests/cli/test_cli_processes.py
        # and scripts/test (the PostgreSQL server the tests create databases on).
        "REFERRALS_TEST_PG",
        # scripts/test: how many pytest workers.
        "REFERRALS_TEST_WORKERS",
        # tests/conftest.py (the browser tests): where screenshots go.
        "REFERRALS_SCREENSHOTS",
        # tests/system/test_soak.py: the soak test's database.
        "REFERRALS_SOAK_DB",
    }
)


def setting_variables() -> frozenset[str]:
    """The variables the settings object reads: REFERRALS_ and each field's name."""
    return frozenset(PREFIX + name.upper() for name in Settings.model_fields)


def known_variables(also: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every REFERRALS_* variable this version reads (ALSO: a province's own channel variables)."""
    return setting_variables() | READ_ELSEWHERE | also


def closest(name: str, known: frozenset[str]) -> str | None:
    """The known variable NAME was most likely meant to be (..._DATABSE_URL ->
    REFERRALS_DATABASE_URL), or None. Compared without the prefix, which all of them share."""
    if name.upper() in known:
        return name.upper()
    tails = {k.removeprefix(PREFIX): k for k in known if k.startswith(PREFIX)}
    found = difflib.get_close_matches(name.upper().removeprefix(PREFIX), tails, n=1, cutoff=0.75)
    return tails[found[0]] if found else None
