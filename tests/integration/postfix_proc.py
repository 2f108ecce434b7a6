"""A private Postfix instance for integration tests (Debian's ``postfix``, started as root).

Config, queue and mail live in a temp dir of their own; SMTP listens on a free port of
127.0.0.1; nothing of the machine's own Postfix is used but its ``master.cf`` (copied, with
``smtp inet`` moved to the free port and chroot off) and its dynamic map list.
"""

from __future__ import annotations

import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EVERYONE_BUT_DEAD = "if !/^dead/\n/^[^@]+@/ inbox/\nendif\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postfix:
    """Its own Postfix instance: config, queue and maildir in a temp dir, SMTP on a free
    port. Recipients are virtual(8) mailboxes under ``maildir`` chosen by the regexp table
    ``mailboxes`` (by default every recipient goes to ``inbox/`` unless it starts with
    ``dead``); ``main_extra`` and ``master_extra`` are appended to main.cf and master.cf,
    ``files`` are written to the config dir (``{etc}`` in any of them is the config dir)."""

    def __init__(self, root: Path, mailboxes: str = EVERYONE_BUT_DEAD, main_extra: str = "",
                 master_extra: str = "", files: dict[str, str] | None = None) -> None:
        self.root, self.port = root, free_port()
        self.etc, self.maildir = root / "etc", root / "mail"
        for d in (self.etc, root / "queue", root / "data", self.maildir):
            d.mkdir(parents=True)
        shutil.chown(root / "data", "postfix")
        shutil.chown(self.maildir, "postfix")
        for name in ("dynamicmaps.cf",):
            if Path("/etc/postfix", name).exists():
                shutil.copy(Path("/etc/postfix", name), self.etc / name)
        if Path("/etc/postfix/dynamicmaps.cf.d").is_dir():
            shutil.copytree("/etc/postfix/dynamicmaps.cf.d", self.etc / "dynamicmaps.cf.d")
        (self.etc / "mailboxes").write_text(mailboxes)
        for name, text in (files or {}).items():
            (self.etc / name).write_text(text.replace("{etc}", str(self.etc)))
        pw = pwd.getpwnam("postfix")
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydomain = relay.test
mydestination =
mynetworks = 127.0.0.0/8
smtputf8_enable = yes
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = static:all
virtual_mailbox_base = {self.maildir}
virtual_mailbox_maps = regexp:{self.etc}/mailboxes
virtual_minimum_uid = 1
virtual_uid_maps = static:{pw.pw_uid}
virtual_gid_maps = static:{pw.pw_gid}
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
smtpd_banner = relay.test ESMTP
biff = no
""" + main_extra.replace("{etc}", str(self.etc)))
        lines = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            fields = line.split()
            if fields[:2] == ["smtp", "inet"]:
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            elif len(fields) >= 8 and not line.startswith((" ", "#")) and fields[4] == "y":
                fields[4] = "n"  # no chroot
                line = " ".join(fields)
            lines.append(line)
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n" + master_extra)

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["postfix", "-c", str(self.etc), *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def maillog(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        self._postfix("check")
        started = self._postfix("start")
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix did not start: {started.stderr} "
                                       f"{self.maillog()[-2000:]}") from None
                time.sleep(0.2)

    def flush(self) -> None:
        """Deliver what is deferred now (``postqueue -f``)."""
        subprocess.run(["postqueue", "-c", str(self.etc), "-f"], capture_output=True, timeout=60,
                       check=False)

    def stop(self) -> None:
        self._postfix("stop")

    def delivered(self, mailbox: str = "inbox") -> list[bytes]:
        new = self.maildir / mailbox / "new"
        return [p.read_bytes() for p in new.iterdir()] if new.is_dir() else []


def skip_unless_postfix_can_run() -> None:
    if shutil.which("postfix") is None or not Path("/etc/postfix/master.cf").exists():
        pytest.skip("Postfix is not installed (Debian package postfix)")
    import os

    if os.geteuid() != 0:
        pytest.skip("a Postfix instance's master process must be started as root")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        pytest.skip("no postfix user (the Debian package was not fully installed)")


@contextmanager
def running_postfix(**settings: object) -> Iterator[Postfix]:
    """A started instance (skips the test when Postfix cannot run here), stopped after."""
    skip_unless_postfix_can_run()
    # Postfix's daemons run as the postfix user: its directories must be reachable by it
    # (pytest's tmp_path is private to root)
    root = Path(tempfile.mkdtemp(prefix="outreach-postfix-"))
    root.chmod(0o755)
    instance = Postfix(root / "postfix", **settings)  # type: ignore[arg-type]
    try:
        instance.start()
    except RuntimeError as exc:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(str(exc))
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)
