from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_core.errors import InstanceError
from gateway_core.instance import InstanceLock
from gateway_core.paths import Paths

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_in_the_same_process_is_refused_with_pid_and_home() -> None:
    paths = Paths.from_env()

    with InstanceLock(paths), pytest.raises(InstanceError) as caught:
        InstanceLock(paths).acquire()

    assert str(caught.value) == (
        f"Toolgate is already running for TOOLGATE_HOME={paths.home} (pid {os.getpid()}); "
        "stop it first or set TOOLGATE_HOME to another folder"
    )


def test_the_lock_can_be_taken_again_after_release() -> None:
    paths = Paths.from_env()
    with InstanceLock(paths):
        pass

    with InstanceLock(paths) as lock:
        assert lock.held
        assert paths.lock_file.read_text().strip() == str(os.getpid())


def test_a_lock_held_by_another_process_is_refused_until_it_exits() -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from gateway_core.instance import InstanceLock\n"
            "from gateway_core.paths import Paths\n"
            "with InstanceLock(Paths.from_env()):\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.read()\n",
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InstanceError, match=rf"\(pid {holder.pid}\)"):
            InstanceLock(Paths.from_env()).acquire()
    finally:
        holder.communicate(input="", timeout=10)

    with InstanceLock(Paths.from_env()) as lock:
        assert lock.held
