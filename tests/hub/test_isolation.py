"""Issue 18 item 0: tenant servers never run as the platform's account.

As root, the hub gives every hub user a system account of their own (created on the first
spawn, removed by the stack afterwards); from inside a real tenant kernel spawned by the real
hub, the platform's secrets, another tenant's database files and another user's working
directory cannot be read. The data directory sits under a world-traversable folder here, so
only the platform's own 0700/0600 modes protect it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.conftest import ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, _prepare, require_proxy
from workbench.hub.accounts import (
    account_name,
    accounts_of,
    can_run,
    ensure_account,
    remove_account,
)
from workbench.hub.sandbox import bubblewrap_available, bubblewrap_command
from workbench.hub.session import HubSession
from workbench.hub.stack import HubStack

pytestmark = [pytest.mark.hub, pytest.mark.integration, pytest.mark.slow]

KERNEL_PYTHON = Path("/opt/workbench-kernels/bin/python")
DROP_TO_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def require_root_and_kernel_venv() -> None:
    if os.geteuid() != 0:
        pytest.skip("per-user accounts need root (the bubblewrap test covers other hubs)")
    if not KERNEL_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{KERNEL_PYTHON} is missing: run `make kernel-venv`")
        pytest.skip(f"{KERNEL_PYTHON} is missing (make kernel-venv)")


@pytest.fixture(scope="module")
def open_stack() -> Iterator[HubStack]:
    require_proxy()
    require_root_and_kernel_venv()
    outer = Path(tempfile.mkdtemp(prefix="workbench-isolation-"))
    outer.chmod(0o755)  # anyone may traverse: only the data directory's own mode protects it
    home = outer / "wb"
    platform = HubStack(home, admin_password=ADMIN_PASSWORD, prepare=_prepare)
    namespace = str(home.resolve())
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()
        left = accounts_of(namespace)
        shutil.rmtree(outer, ignore_errors=True)
        assert left == [], f"accounts left behind: {left}"


PROBE = """
import json, os
def probe(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
        return "read"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
print(json.dumps({"uid": os.getuid(), "groups": os.getgroups(),
                  "probes": {p: probe(p) for p in PATHS}}))
"""


def _run_probe(session: HubSession, paths: list[str]) -> dict[str, object]:
    kernel = session.start_kernel()
    result = session.execute(kernel, f"PATHS = {paths!r}\n{PROBE}", timeout=60)
    assert result.status == "ok", result.error
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_tenant_kernel_runs_as_its_own_account_and_reads_no_platform_file(
    open_stack: HubStack,
) -> None:
    stack = open_stack
    home = stack.home.resolve()
    assert stack.work_root is not None
    with HubSession(stack.hub_url) as bob:
        bob.login("globex", "bob", BOB_PASSWORD)
        bob.spawn("globex")
        bob_work = stack.work_root / "globex" / "bob@globex"
        bob.stop()
    secrets = sorted(p for p in (home / "secrets").iterdir() if p.is_file())
    assert secrets, "the platform keeps secrets in <home>/secrets"
    globex_files = sorted(
        p for p in home.rglob("*") if p.is_file() and "globex" in p.relative_to(home).parts
    )
    assert globex_files, "the other tenant has files in the data directory"
    targets = [
        str(home),
        *map(str, secrets),
        str(globex_files[0]),
        str(bob_work),
        str(bob_work / "03-stream-data.ipynb"),
    ]
    with HubSession(stack.hub_url) as alice:
        alice.login("acme", "alice", ALICE_PASSWORD)
        alice.spawn("acme")
        seen = _run_probe(alice, targets)
        alice.stop()
    account = pwd.getpwnam(account_name("alice@acme", str(home)))
    assert seen["uid"] != os.getuid()
    assert seen["uid"] == account.pw_uid
    assert account.pw_name.startswith("wb-")
    assert len(account.pw_name) <= 32
    assert 0 not in seen["groups"]  # type: ignore[operator]
    probes = seen["probes"]
    assert isinstance(probes, dict)
    assert probes == dict.fromkeys(targets, "denied"), probes
    # the platform's side: data directory and secrets private to its account
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in secrets} == {0o600}
    assert bob_work.stat().st_uid == pwd.getpwnam(account_name("bob@globex", str(home))).pw_uid
    assert stat.S_IMODE(bob_work.stat().st_mode) == 0o700


def test_an_account_created_for_a_hub_user_is_removed_and_cannot_run_roots_python() -> None:
    require_root_and_kernel_venv()
    hub_user = "isolation-probe@acme"
    name = account_name(hub_user, "test-namespace")
    entry = ensure_account(name, hub_user=hub_user)
    try:
        assert entry.pw_uid != 0
        assert entry.pw_shell.endswith("nologin")
        assert accounts_of("test-namespace") == [name]
        assert ensure_account(name, hub_user=hub_user).pw_uid == entry.pw_uid  # idempotent
        assert can_run(entry.pw_uid, entry.pw_gid, str(KERNEL_PYTHON))
        venv_python = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
        if str(venv_python.resolve()).startswith("/root/"):
            assert not can_run(entry.pw_uid, entry.pw_gid, str(venv_python))
    finally:
        assert remove_account(name)
    assert accounts_of("test-namespace") == []
    with pytest.raises(Exception, match="not an account of Mesh Workbench"):
        remove_account("root")


def test_the_kernel_virtualenv_runs_a_tenant_kernel_as_an_unprivileged_account() -> None:
    """make kernel-venv holds what the tenant server and kernel import (the notebook extension
    grows: a missing extra there breaks every tenant kernel)."""
    require_root_and_kernel_venv()
    modules = "jupyterhub.singleuser, ipykernel.kernelapp, workbench.notebook.extension, panel"
    result = subprocess.run(
        [*DROP_TO_NOBODY, str(KERNEL_PYTHON), "-c", f"import {modules}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        check=False,
    )
    assert result.returncode == 0, f"rebuild it: make kernel-venv\n{result.stderr[-2000:]}"


def test_bubblewrap_hides_the_data_directory_and_other_working_directories(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A hub that is not root: its servers run as its own account inside bubblewrap. Run here
    as ``nobody`` (an unprivileged hub), reading what would otherwise be readable."""
    if not bubblewrap_available():
        if os.environ.get("CI"):
            pytest.fail("bubblewrap is missing (apt-get install bubblewrap)")
        pytest.skip("bubblewrap is not installed")
    if os.geteuid() != 0:
        pytest.skip("the test switches to nobody (root needed)")
    outer = Path(tempfile.mkdtemp(prefix="workbench-bwrap-"))
    try:
        outer.chmod(0o755)
        data, work = outer / "data", outer / "work"
        own, other = work / "acme" / "alice@acme", work / "globex" / "bob@globex"
        for directory in (data / "secrets", own, other):
            directory.mkdir(parents=True)
        (data / "secrets" / "signing-key").write_text("secret")
        (other / "notes.ipynb").write_text("{}")
        (own / "mine.ipynb").write_text("{}")
        for path in [outer, *outer.rglob("*")]:
            os.chown(path, 65534, 65534)  # all the hub account's (nobody's) own files
        script = (
            "import json, os\n"
            f"paths = {[str(data / 'secrets' / 'signing-key'), str(other / 'notes.ipynb')]!r}\n"
            "print(json.dumps({'hidden': [not os.path.exists(p) for p in paths],\n"
            f"  'own': os.listdir({str(own)!r}), 'pids': len([p for p in os.listdir('/proc') "
            "if p.isdigit()])}))\n"
            f"open({str(own / 'new.txt')!r}, 'w').write('x')\n"
        )
        command = bubblewrap_command(
            ["/usr/bin/python3", "-c", script], hide=[data, work], keep=[own]
        )
        result = subprocess.run(
            [*DROP_TO_NOBODY, *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        assert seen["hidden"] == [True, True]
        assert seen["own"] == ["mine.ipynb"]
        assert seen["pids"] <= 3  # a PID namespace of its own: the hub's processes are not there
        assert (own / "new.txt").read_text() == "x"  # the own directory is the real one
    finally:
        shutil.rmtree(outer, ignore_errors=True)
