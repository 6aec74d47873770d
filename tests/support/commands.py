"""`referrals ...` as people type it, for the CLI tests.

Each distinct command's first run in a test goes to a fresh process: that is what found the
`advance` that failed in any new process (tables registered late), and what a person's terminal
does. Its repeats run in this process, with the same environment: a fresh process costs 1.5 to
2.5 s of imports on this machine, and the privacy test alone ran 23 of them per database, most
to check refusals and figures, not imports (the suite had grown from 11 to 19 minutes).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout

REFERRALS = [sys.executable, "-m", "referrals.cli"]
WORD = re.compile(r"[a-z][a-z-]*")

Done = subprocess.CompletedProcess[str]


class Commands:
    """Runs commands with `env` over this process's environment; fresh once per command."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self.fresh: list[str] = []  # the commands that ran in a fresh process, in order

    def __call__(self, *args: str, **env: str) -> Done:
        command = " ".join(_words(args))
        full = os.environ | self.env | env
        if command not in self.fresh:
            self.fresh.append(command)
            done = subprocess.run(
                [*REFERRALS, *args], env=full, capture_output=True, text=True, timeout=120
            )
        else:
            done = _here(full, args)
        assert "Traceback" not in done.stderr, done.stderr
        return done


def _words(args: tuple[str, ...]) -> list[str]:
    """The command's name: its leading lower-case words (`privacy requests add`), before the
    first option or value (a code, a number, a path)."""
    words = []
    for arg in args:
        if not WORD.fullmatch(arg):
            break
        words.append(arg)
    return words


def _here(env: dict[str, str], args: tuple[str, ...]) -> Done:
    from referrals.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if isinstance(exit_.code, str):
                err.write(exit_.code + "\n")
    return subprocess.CompletedProcess(["referrals", *args], code, out.getvalue(), err.getvalue())


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment is `env` for the command, then what it was, with the settings
    read again each side (they are cached per process)."""
    from referrals.config.settings import get_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def refused(done: Done) -> str:
    """The one line of a refusal (exit 1, nothing on stdout, no traceback)."""
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
    return done.stderr


# The CLI tests' shared runner: tests/conftest.py starts it afresh for every test, so each
# test runs each of its commands once in a fresh process.
referrals = Commands()
