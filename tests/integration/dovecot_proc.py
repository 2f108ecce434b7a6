"""A private Dovecot IMAP server for integration tests (Debian's ``dovecot-imapd``).

Started as root in the foreground (``dovecot -F -c``) with a config of its own in a temp
dir: IMAP on a free port of 127.0.0.1, no TLS (``ssl = no``, plaintext login allowed),
one user from a passwd-file, maildirs in the temp dir owned by ``nobody``. Nothing of the
machine's own Dovecot config is read; the process is stopped by its own pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .postfix_proc import free_port


class Dovecot:
    def __init__(self, root: Path, user: str = "bounces", password: str = "s3cret") -> None:
        self.root, self.port, self.user, self.password = root, free_port(), user, password
        owner = pwd.getpwnam("nobody")
        for name in ("run", "state", "mail", "home"):
            (root / name).mkdir()
        for name in ("mail", "home"):
            shutil.chown(root / name, owner.pw_uid, owner.pw_gid)
        (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
        login_user = "dovenull" if _user_exists("dovenull") else "nobody"
        internal_user = "dovecot" if _user_exists("dovecot") else "nobody"
        self.conf = root / "dovecot.conf"
        self.conf.write_text(f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot exited: {out} {self.log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen: {self.log()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)

    def url(self, mailbox: str = "INBOX") -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/{mailbox}"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """A started private Dovecot; skips the test only when Dovecot cannot run here."""
    if shutil.which("dovecot") is None or not Path("/usr/lib/dovecot/imap").exists():
        pytest.skip("Dovecot's IMAP server is not installed (Debian package dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("a private Dovecot instance must be started as root")
    root = Path(tempfile.mkdtemp(prefix="outreach-dovecot-"))
    root.chmod(0o755)
    instance = Dovecot(root)
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
