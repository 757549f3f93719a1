import os

import pytest

from harness import sandbox
from tests.e2e import hoststate


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found():
    """After the whole end-to-end session, the host is as it was before it."""
    if os.geteuid() != 0:
        yield
        return
    sandbox.clean()  # what earlier aborted runs left is not this session's doing
    before = hoststate.snapshot()
    yield
    after = hoststate.snapshot()
    problems = hoststate.differences(before, after)
    leftovers = hoststate.run_processes(ignore=hoststate.foreign_runs())  # others' clusters may be running
    assert not problems and not leftovers, "\n".join(problems + leftovers)
