"""deploy/README.md, executed: its command blocks, in order, on a scratch copy of this machine
(tests/system/test_guide.py).

The scratch machine is this one in a private mount namespace (`unshare --mount`, root only):
`/etc`, `/opt`, `/srv`, `/var`, `/usr/local` and `/root` are overlays whose writes land in the
test's folder, and `/run` is a fresh tmpfs (with PostgreSQL's socket folder bound back in). So
the guide's paths (`/opt/referrals`, `/etc/referrals/khanh-hoa.env`, `/etc/systemd/system`,
`/var/lib/referrals`, `/srv/backup`, `/etc/nginx`) are used exactly as written, `useradd`
creates its user on the scratch machine only, and nothing is left behind. Processes share the
machine's network and PostgreSQL.

What stands in for what (`Stand`), everything else is the guide's text as written:

- **ports**: 443, 80, 4200 and 8001 are free ports in 9350-9399, in the guide's blocks and in
  the checkout's `deploy/nginx/referrals.conf` (the one file outside the blocks that names
  ports); the machine's other servers may hold the real ones.
- **host names**: `db.internal`, `kh.example.vn` and `prefect.example.vn` are 127.0.0.1 in the
  scratch machine's `/etc/hosts`; URLs to the proxy gain its port.
- **database names**: the roles and databases `prefect` and `referrals_khanh_hoa` get a suffix
  of this run's (runs in parallel do not meet); they are dropped at the end.
- **values the operator chooses** (`<...>` in the guide): random ones; a placeholder without a
  stand-in fails the run.
- **the repository**: `https://example.org/referrals.git` is a git repository of this working
  tree as it is (tracked and untracked files, not ignored ones), so uncommitted changes are
  what is tested; the upgrade pulls a second commit the test adds.
- **what the operator types**: the passwords asked by `read -rsp 'Password for NAME: '`.
- **certificates**, which the guide gets by hand (a public CA): a CA of the test's own, which
  issues both names' certificates and is added to the machine's store, as
  `update-ca-certificates` would.
- **sudo** (`/usr/local/sbin/sudo` on the scratch machine): the test runs as root, so it only
  changes user (`-u`, with runuser) and resets the environment as sudo's `env_reset` does.
- **apt-get install**: simulated (`apt-get install --simulate`): nothing is installed, but every
  name must be a Debian package; the machine must have them (scripts/test installs them).
- **systemctl**: reads the unit files installed in `/etc/systemd/system` and runs them as
  systemd would: `User=`, `WorkingDirectory=`, `Environment=`, `EnvironmentFile=` (systemd's
  parsing), `StateDirectory=`, `ExecStart=` and `ExecStartPost=` with `%i`/`%H`/`%S`
  specifiers and `${VAR}`/`$VAR` expansion, `Type=oneshot`, `KillSignal=`, `KillMode=`,
  `TimeoutStopSec=`; output to a log per unit (the journal). Not emulated: `Restart=`, cgroups
  (a unit's processes are its process group and their descendants), dependencies. `nginx` is
  Debian's nginx with Debian's `/etc/nginx` (the package's service is running after install:
  here it starts on the first reload). `systemd-analyze verify` is the real one.

The blocks run in one operator's shell session: as root, each block with `set -e -o pipefail`,
the working folder, exported variables and shell functions carried from block to block.

This module runs in two places: in pytest (the `Guide` class), and on the scratch machine as
`python3 guide.py systemctl STATE ARGS...` (the stand-in for systemctl), where only the standard
library is available: keep its top level to that.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # not `support.ROOT`: this also runs as a script
GUIDE = ROOT / "deploy" / "README.md"
PORTS = range(9350, 9400)
HOSTS = ("db.internal", "kh.example.vn", "prefect.example.vn")
PROXIED = ("kh.example.vn", "prefect.example.vn")  # the names nginx serves, with certificates
OVERLAID = ("/etc", "/opt", "/srv", "/var", "/usr/local", "/root")
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # sudo's, systemd's
OPERATOR_ENV = {
    "PATH": SECURE_PATH,
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}


# --- The guide's blocks -----------------------------------------------------------------------

FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>.*)$")
MARK = re.compile(r"<!-- guide-test: (?P<what>skip|by hand: [\w-]+) \((?P<why>[^)]+)\) -->")


@dataclass
class Block:
    """A command block (```bash), or a file the operator writes (```sh file=PATH)."""

    line: int
    text: str
    path: str | None = None  # a file block's
    skip: str | None = None  # why the test cannot run it
    by_hand: str | None = None  # the step done by hand just before it (a stand-in's name)

    def title(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"deploy/README.md:{self.line} {self.path or first[:70]}"


def blocks(markdown: str) -> list[Block]:
    """Every ```bash block and ```sh file=PATH block, in order, with the marks before them;
    other fences (the diagram, YAML, plain text) are prose."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    skip = by_hand = None
    while i < len(lines):
        line = lines[i]
        if mark := MARK.search(line):
            if mark["what"] == "skip":
                skip = mark["why"]
            else:
                by_hand = mark["what"].removeprefix("by hand: ")
        opened = FENCE.match(line)
        if not opened:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        text = "\n".join(lines[i + 1 : end]) + "\n"
        lang, info = opened["lang"], opened["info"].strip()
        if lang == "bash":
            found.append(Block(i + 1, text, skip=skip, by_hand=by_hand))
        elif lang == "sh":
            assert info.startswith("file="), f"line {i + 1}: ```sh blocks are files (file=PATH)"
            found.append(Block(i + 1, text, path=info.removeprefix("file="), by_hand=by_hand))
        else:
            assert skip is None and by_hand is None, f"line {i + 1}: a mark before a non-block"
        if lang in ("bash", "sh"):
            skip = by_hand = None
        i = end + 1
    return found


# --- What stands in for what ------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """COUNT ports of 9350-9399 that nothing listens on, on any address."""
    ports: list[int] = []
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise AssertionError(f"no {count} free ports in 9350-9399")


@dataclass
class Stand:
    """This run's stand-ins (the module's docstring lists them)."""

    origin: Path
    ports: dict[int, int] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: f"t{secrets.token_hex(3)}")
    chosen: dict[str, str] = field(default_factory=dict)  # the operator's <...> values
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        https, http, prefect, web = free_ports(4)
        self.ports = {443: https, 80: http, 4200: prefect, 8001: web}
        for name in (
            "prefect-db-password",
            "khanh-hoa-db-password",
            "khanh-hoa-secret-key",
            "prefect-password",
            "smtp-password",
        ):
            self.chosen[f"<{name}>"] = secrets.token_hex(32 if "key" in name else 16)
        self.passwords = {"admin": secrets.token_urlsafe(12), "lan": secrets.token_urlsafe(12)}

    @property
    def prefect_db(self) -> str:
        return f"prefect_{self.suffix}"

    @property
    def province_db(self) -> str:
        return f"referrals_khanh_hoa_{self.suffix}"

    def url(self, name: str) -> str:
        """How the scratch machine reaches a name at the proxy."""
        return f"https://{name}:{self.ports[443]}"

    def guide(self, text: str) -> str:
        """A block of the guide as this run runs it."""
        text = text.replace("https://example.org/referrals.git", str(self.origin))
        for name in PROXIED:
            text = text.replace(f"https://{name}", self.url(name))
        text = text.replace(
            "PREFECT_SERVER_API_PORT=4200", f"PREFECT_SERVER_API_PORT={self.ports[4200]}"
        )
        text = text.replace("REFERRALS_WEB_PORT=8001", f"REFERRALS_WEB_PORT={self.ports[8001]}")
        text = re.sub(r"\breferrals_khanh_hoa\b", self.province_db, text)
        for before in (r"(?<=ROLE )", r"(?<=DATABASE )", r"(?<=OWNER )", r"(?<=//)",
                       r"(?<=@db\.internal:5432/)", r"(?<=--dbname=)"):  # fmt: skip
            text = re.sub(before + r"prefect\b(?![-.])", self.prefect_db, text)
        for placeholder, value in self.chosen.items():
            text = text.replace(placeholder, value)
        left = re.findall(r"<[a-z][a-z0-9-]*>", text)
        assert not left, f"placeholders without a stand-in: {left}"
        return text

    def nginx(self, text: str) -> str:
        """deploy/nginx/referrals.conf as the checkout the guide clones holds it."""
        text = re.sub(r"\blisten 443\b", f"listen {self.ports[443]}", text)
        text = re.sub(r"\blisten 80\b", f"listen {self.ports[80]}", text)
        for port in (4200, 8001):
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{self.ports[port]}")
        return text

    def keyboard(self, block: str) -> str:
        """What the operator types during BLOCK: the passwords it asks for."""
        asked = re.findall(r"read -rsp 'Password for (\w+): '", block)
        return "".join(f"{self.passwords[name]}\n" for name in asked)


def make_origin(folder: Path, stand: Stand) -> Path:
    """A git repository of the working tree as it is: tracked and untracked files, not ignored
    ones (`git ls-files` only reads)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    folder.mkdir(parents=True)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not a tracked file deleted in the working tree
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    conf = folder / "deploy" / "nginx" / "referrals.conf"
    conf.write_text(stand.nginx(conf.read_text(encoding="utf-8")), encoding="utf-8")
    commit(folder, "the working tree")
    return folder


def commit(folder: Path, message: str) -> None:
    git = ["git", "-C", str(folder), "-c", "user.name=guide", "-c", "user.email=guide@test"]
    if not (folder / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)


# --- The scratch machine ----------------------------------------------------------------------

SUDO = r"""#!/bin/bash
# sudo on the guide test's scratch machine (tests/support/guide.py): the caller is root, so it
# only changes user (-u) and resets the environment, as sudo's env_reset does.
user=root
while [ $# -gt 0 ]; do
  case "$1" in
    -u) user=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "sudo stand-in: option $1 is not supported" >&2; exit 1 ;;
    *) break ;;
  esac
done
IFS=: read -r _ _ _ _ _ home shell < <(getent passwd "$user") || { echo "sudo: unknown user $user" >&2; exit 1; }
env=(PATH=@PATH@ HOME="$home" USER="$user" LOGNAME="$user" SHELL="$shell" LANG=C.UTF-8
     TERM="${TERM:-dumb}" SUDO_USER=root SUDO_UID=0 SUDO_GID=0)
[ "$user" = root ] && exec env -i "${env[@]}" "$@"
exec env -i "${env[@]}" runuser -u "$user" -- "$@"
"""

APT_GET = r"""#!/bin/bash
# apt-get on the guide test's scratch machine (tests/support/guide.py): installs nothing;
# `install` is simulated, which fails on a name that is not a Debian package.
[ "$1" = install ] || { echo "apt-get stand-in: only install" >&2; exit 1; }
shift
exec /usr/bin/apt-get install --simulate "$@" >/dev/null
"""

SYSTEMCTL = """#!/bin/sh
# systemctl on the guide test's scratch machine: tests/support/guide.py runs the units.
exec /usr/bin/python3 @GUIDE@ systemctl @STATE@ "$@"
"""


class Machine:
    """This machine in a private mount namespace (the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / "state"  # the systemctl stand-in's: units, their logs
        self.sleeper: subprocess.Popen[bytes] | None = None

    def upper(self, path: str) -> Path:
        return self.folder / "upper" / path.strip("/").replace("/", "-")

    def start(self) -> None:
        self.state.mkdir(parents=True)
        (self.state / "logs").mkdir()
        mounts = []
        for path in OVERLAID:
            upper, work = self.upper(path), self.folder / "work" / path.strip("/").replace("/", "-")
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={path},upperdir={upper},workdir={work} {path}"
            )
        # Files Docker may mount over /etc's (the overlay would show the ones beneath)
        etc = self.upper("/etc")
        hosts = Path("/etc/hosts").read_text() + "".join(f"127.0.0.1 {h}\n" for h in HOSTS)
        (etc / "hosts").write_text(hosts)
        for name in ("resolv.conf", "hostname"):
            with contextlib.suppress(OSError):
                shutil.copy(f"/etc/{name}", etc / name)
        sbin = self.upper("/usr/local") / "sbin"
        sbin.mkdir()
        for name, text in (("sudo", SUDO), ("apt-get", APT_GET), ("systemctl", SYSTEMCTL)):
            text = text.replace("@PATH@", SECURE_PATH).replace("@STATE@", str(self.state))
            (sbin / name).write_text(text.replace("@GUIDE@", str(Path(__file__).resolve())))
            (sbin / name).chmod(0o755)
        sock = self.folder / "pgsock"
        sock.mkdir()
        script = "\n".join(
            [
                "set -e",
                f"[ -d /run/postgresql ] && mount --bind /run/postgresql {sock}",
                "mount -t tmpfs -o mode=0755 tmpfs /run",
                f"mkdir -p /run/postgresql /run/lock && mount --bind {sock} /run/postgresql",
                *mounts,
                "echo ready",
                "exec sleep infinity",
            ]
        )
        self.sleeper = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.sleeper.stdout is not None
        ready = self.sleeper.stdout.readline()
        assert ready == b"ready\n", "the scratch machine did not start (unshare, overlays)"

    def run(
        self, script: str, *, stdin: str = "", timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """SCRIPT in bash, as root with an operator's environment, on the scratch machine."""
        assert self.sleeper is not None
        with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".sh", delete=False) as f:
            f.write(script)
        enter = ["nsenter", f"--target={self.sleeper.pid}", "--mount", "--wd=/", "--"]
        operator = ["env", "-i", *(f"{k}={v}" for k, v in OPERATOR_ENV.items())]
        done = subprocess.run(
            [*enter, *operator, "bash", "--noprofile", "--norc", f.name],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        Path(f.name).unlink()
        if check:
            assert done.returncode == 0, f"{script}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return done

    def read(self, path: str) -> str:
        return self.run(f"cat {shlex.quote(path)}").stdout

    def log(self, unit: str) -> str:
        log = self.state / "logs" / f"{unit}.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"

    def processes(self) -> list[int]:
        """Every process on the scratch machine but its keeper."""
        assert self.sleeper is not None
        ns = os.readlink(f"/proc/{self.sleeper.pid}/ns/mnt")
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.sleeper.pid:
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "mnt") == ns:
                        found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """Kill every process of the scratch machine (the units' stopping was tested by the
        guide's upgrade); the mounts go with the last of them."""
        if self.sleeper is None:
            return
        with contextlib.suppress(OSError):  # the keeper died: so did the namespace
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.sleeper.kill()
        self.sleeper.wait()
        self.sleeper = None


# --- Running the guide ------------------------------------------------------------------------

CARRY = ["PWD", "OLDPWD", "SHLVL", "_"]


class Guide:
    """deploy/README.md's blocks, run in order on a scratch machine."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stand = Stand(origin=folder / "origin")
        self.machine = Machine(folder / "machine")
        self.session = folder / "session"  # the operator's shell: folder, exports, functions
        self.ca = folder / "ca"
        self.ran: list[tuple[Block, float]] = []
        self.by_hand: dict[str, Callable[[], None]] = {"certificates": self.certificates}

    def __enter__(self) -> Guide:
        make_origin(self.stand.origin, self.stand)
        self.session.mkdir()
        (self.session / "cwd").write_text("/root\n")
        for name in ("functions.sh", "exports.sh"):
            (self.session / name).write_text("")
        try:
            self.machine.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.machine.stop()
        finally:
            self.drop_databases()
            # The scratch machine's writes (the venv alone is 440 MB); its units' logs stay.
            for scratch in ("upper", "work"):
                shutil.rmtree(self.machine.folder / scratch, ignore_errors=True)

    def drop_databases(self) -> None:
        sql = "".join(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nDROP ROLE IF EXISTS "{name}";\n'
            for name in (self.stand.prefect_db, self.stand.province_db)
        )
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"],
            input=sql,
            text=True,
            capture_output=True,
            check=True,
        )

    def blocks(self) -> list[Block]:
        return blocks(GUIDE.read_text(encoding="utf-8"))

    def run(self, block: Block) -> subprocess.CompletedProcess[str] | None:
        """BLOCK as the operator runs it (a file block: the file written as shown)."""
        if block.by_hand:
            self.by_hand[block.by_hand]()
        if block.skip:
            return None
        started = time.monotonic()
        text = self.stand.guide(block.text)
        if block.path:
            done = self.machine.run(
                f"install -D -m 0600 /dev/stdin {shlex.quote(block.path)}", stdin=text, check=False
            )
        else:
            done = self.machine.run(self.session_script(text), stdin=self.stand.keyboard(text),
                                    check=False)  # fmt: skip
        self.ran.append((block, time.monotonic() - started))
        assert done.returncode == 0, (
            f"{block.title()} failed (exit {done.returncode}):\n{text}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
            + "".join(f"\n--- {unit}\n{self.machine.log(unit)}" for unit in self.units_logged())
        )
        return done

    def session_script(self, block: str) -> str:
        """BLOCK in the operator's session; traced, with times, to session/trace.log (but not
        a block that reads a password)."""
        s = self.session
        skip = "|".join(CARRY)
        trace = "" if "read -rs" in block else "set -x"
        return f"""set -e -o pipefail
umask 022
cd "$(cat {s}/cwd)"
. {s}/functions.sh
. {s}/exports.sh
trap 'set +x; pwd > {s}/cwd; declare -f > {s}/functions.sh; export -p | grep -Ev "^declare -x ({skip})=" > {s}/exports.sh' EXIT
exec 9>>{s}/trace.log; BASH_XTRACEFD=9; PS4='+ $EPOCHREALTIME '; {trace}
{block}"""

    def units_logged(self) -> list[str]:
        return sorted(p.stem for p in (self.machine.state / "logs").glob("*.log"))

    def certificates(self) -> None:
        """The certificates the guide gets by hand: a CA of the test's own issues one per name
        at the proxy, and joins the machine's store (as update-ca-certificates would)."""
        self.ca.mkdir()
        ca = self.ca
        lines = [
            "set -e",
            f"cd {ca}",
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
            " -keyout ca.key -out ca.pem -subj '/CN=guide test CA'"
            " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        ]
        for name in PROXIED:
            lines += [
                f"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                f" -keyout /etc/ssl/private/{name}.key -out {name}.csr -subj /CN={name}",
                f"printf 'subjectAltName=DNS:{name}\\nextendedKeyUsage=serverAuth\\n"
                f"basicConstraints=CA:FALSE\\nauthorityKeyIdentifier=keyid\\n' > {name}.ext",
                f"openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
                f" -days 2 -extfile {name}.ext -out /etc/ssl/certs/{name}.pem 2>/dev/null",
            ]
        lines.append("cat ca.pem >> /etc/ssl/certs/ca-certificates.crt")
        self.machine.run("\n".join(lines))


# --- systemctl on the scratch machine (standard library only) ---------------------------------

UNITS = Path("/etc/systemd/system")


@dataclass
class Unit:
    """A unit file, as systemd reads it, for one unit name (a template's instance)."""

    name: str
    sections: dict[str, list[tuple[str, str]]]

    @classmethod
    def load(cls, name: str) -> Unit:
        stem, kind = name.rsplit(".", 1)
        prefix, at, _ = stem.partition("@")
        path = UNITS / name
        if at and not path.exists():
            path = UNITS / f"{prefix}@.{kind}"
        if not path.exists():
            raise SystemExit(f"Failed to start {name}: Unit {name} not found.")
        return cls(name, parse_unit(path.read_text(encoding="utf-8")))

    @property
    def instance(self) -> str:
        return self.name.rsplit(".", 1)[0].partition("@")[2]

    def get(self, section: str, key: str) -> list[str]:
        return [self.expand(v) for k, v in self.sections.get(section, []) if k == key]

    def one(self, section: str, key: str, default: str = "") -> str:
        found = self.get(section, key)
        return found[-1] if found else default

    def expand(self, value: str) -> str:
        """systemd's specifiers (those the guide's units use)."""
        user = self.sections.get("Service", [])
        who = next((v for k, v in user if k == "User"), "root")
        table = {
            "i": self.instance,
            "I": self.instance,
            "n": self.name,
            "H": socket.gethostname(),
            "S": "/var/lib",
            "u": who,
            "h": pwd.getpwnam(who).pw_dir if who != "root" else "/root",
            "%": "%",
        }
        return re.sub(r"%(.)", lambda m: table[m[1]], value)


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    joined: list[str] = []
    for raw in text.splitlines():
        if joined:
            raw = joined.pop() + " " + raw.strip()
        if raw.endswith("\\"):
            joined.append(raw[:-1].rstrip())
            continue
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif current is not None:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: a line starting with # or ;
    is a comment; a value in single or double quotes loses them; anything else after `=`,
    a `# ...` included, is the value."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise SystemExit(f"{path}: not an assignment: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            inner = value[1:-1]
            value = re.sub(r"\\(.)", r"\1", inner) if value[0] == '"' else inner
        values[key.strip()] = value
    return values


def command_line(line: str, env: dict[str, str]) -> tuple[list[str], bool]:
    """An Exec*= line: its argv after `${VAR}` (one word) and `$VAR` (split) expansion, and
    whether a failure is ignored (a leading `-`)."""
    ignore = line.startswith("-")
    line = line.lstrip("-@:+!")
    argv: list[str] = []
    for word in shlex.split(line):
        if re.fullmatch(r"\$[A-Za-z_]\w*", word):
            argv += env.get(word[1:], "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m[1], ""), word))
    return argv, ignore


def seconds(value: str, default: float) -> float:
    if not value:
        return default
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, f"TimeoutStopSec={value}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


class Systemctl:
    """The units the guide starts, as processes of the scratch machine; their pids in STATE."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.file = state / "units.json"
        self.units: dict[str, dict[str, object]] = (
            json.loads(self.file.read_text()) if self.file.exists() else {}
        )

    def save(self) -> None:
        self.file.write_text(json.dumps(self.units, indent=1))

    def main(self, argv: list[str]) -> int:
        args = [a for a in argv if not a.startswith("-")]
        now = "--now" in argv
        verb, names = args[0], args[1:]
        if verb == "daemon-reload":
            return 0
        if verb == "enable":
            for name in map(full, names):
                self.units.setdefault(name, {})["enabled"] = True
                if name.endswith(".timer"):  # its service is loaded with it
                    Unit.load(name)
                    self.units.setdefault(name.replace(".timer", ".service"), {})
                    self.units[name]["active"] = now
                elif now:
                    self.start(name)
            self.save()
            return 0
        if verb in ("start", "stop", "restart", "reload"):
            for name in self.matching(names, verb):
                if verb in ("stop", "restart"):
                    self.stop(name)
                if verb == "reload" and name == "nginx.service":
                    self.nginx("reload")
                elif verb != "stop":
                    self.start(name)
            self.save()
            return 0
        if verb == "is-active":
            return 0 if all(self.alive(full(n)) for n in names) else 3
        raise SystemExit(f"systemctl stand-in: {verb} is not supported")

    def matching(self, names: list[str], verb: str) -> list[str]:
        found: list[str] = []
        for pattern in names:
            if any(c in pattern for c in "*?["):
                found += [
                    n for n in self.units if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n, full(pattern))
                ]  # fmt: skip
            else:
                found.append(full(pattern))
        return [n for n in found if not (verb == "stop" and n.endswith(".timer"))]

    def alive(self, name: str) -> bool:
        if name == "nginx.service":
            return nginx_pid() is not None
        pid = self.units.get(name, {}).get("pid")
        return isinstance(pid, int) and running(pid)

    def start(self, name: str) -> None:
        self.units.setdefault(name, {})
        if name == "nginx.service":
            self.nginx("start")
            return
        if self.alive(name) or name.endswith(".timer"):
            return
        unit = Unit.load(name)
        user = unit.one("Service", "User", "root")
        account = pwd.getpwnam(user)
        env = {
            "PATH": SECURE_PATH,
            "HOME": account.pw_dir,
            "USER": user,
            "LOGNAME": user,
            "SHELL": account.pw_shell,
            "INVOCATION_ID": secrets.token_hex(16),
        }
        for state in " ".join(unit.get("Service", "StateDirectory")).split():
            folder = Path("/var/lib") / state
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, account.pw_uid, account.pw_gid)
            folder.chmod(int(unit.one("Service", "StateDirectoryMode", "0755"), 8))
            env["STATE_DIRECTORY"] = str(folder)
        for assignment in unit.get("Service", "Environment"):
            for word in shlex.split(assignment):
                key, _, value = word.partition("=")
                env[key] = value
        for path in unit.get("Service", "EnvironmentFile"):
            optional = path.startswith("-")
            if not (optional and not Path(path.lstrip("-")).exists()):
                env.update(environment_file(Path(path.lstrip("-"))))
        log = self.state / "logs" / f"{name}.log"
        spawn = {
            "cwd": unit.one("Service", "WorkingDirectory", account.pw_dir),
            "env": env,
            "user": account.pw_uid,
            "group": account.pw_gid,
            "extra_groups": os.getgrouplist(user, account.pw_gid),
            "stdin": subprocess.DEVNULL,
            "start_new_session": True,
        }
        with log.open("ab") as out:
            if unit.one("Service", "Type", "simple") == "oneshot":
                for key in ("ExecStart", "ExecStartPost"):
                    for line in unit.get("Service", key):
                        argv, ignore = command_line(line, env)
                        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, **spawn)  # type: ignore[call-overload]
                        if done.returncode and not ignore:
                            self.failed(name, log)
                return
            argv, _ = command_line(unit.one("Service", "ExecStart"), env)
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **spawn)  # type: ignore[call-overload]
        self.units[name] |= {
            "pid": proc.pid,
            "signal": unit.one("Service", "KillSignal", "SIGTERM"),
            "mode": unit.one("Service", "KillMode", "control-group"),
            "timeout": seconds(unit.one("Service", "TimeoutStopSec"), 90),
        }
        time.sleep(0.3)
        if proc.poll() is not None:
            self.failed(name, log)

    def failed(self, name: str, log: Path) -> None:
        self.save()
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"Job for {name} failed. Its output (the journal):\n{tail}")

    def stop(self, name: str) -> None:
        if name == "nginx.service":
            self.nginx("stop")
            return
        unit = self.units.get(name, {})
        pid = unit.get("pid")
        if not isinstance(pid, int) or not running(pid):
            return
        sig = getattr(signal, str(unit["signal"]))
        group = [pid] if unit["mode"] == "process" else members(pid)
        for member in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
        deadline = time.monotonic() + float(unit["timeout"])  # type: ignore[arg-type]
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        for member in [pid] if unit["mode"] == "process" else [*members(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
        unit.pop("pid")

    def nginx(self, verb: str) -> None:
        """Debian's nginx with Debian's /etc/nginx: running after its package is installed."""
        pid = nginx_pid()
        if verb == "stop":
            if pid:
                subprocess.run(["/usr/sbin/nginx", "-s", "quit"], check=True)
                while running(pid):
                    time.sleep(0.1)
            return
        if pid is None:
            subprocess.run(["/usr/sbin/nginx"], check=True)
        elif verb == "reload":
            subprocess.run(["/usr/sbin/nginx", "-s", "reload"], check=True)


def full(name: str) -> str:
    return name if re.search(r"\.(service|timer)$", name) else f"{name}.service"


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def members(pid: int) -> list[int]:
    """The unit's processes: its process group, and every descendant of its main process."""
    parents, groups = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                groups[int(entry.name)] = int(fields[2])
    found = {p for p, g in groups.items() if g == pid}
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return sorted(found)


def nginx_pid() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path("/run/nginx.pid").read_text())
        return pid if running(pid) else None
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["systemctl"]:
        return Systemctl(Path(argv[1])).main(argv[2:])
    raise SystemExit(f"usage: {argv[0]} systemctl STATE ARGS...")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
