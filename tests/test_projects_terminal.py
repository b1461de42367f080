"""The terminal of an instance in a project other than `default` (`?project=` on its socket)
runs in that instance, not in its default-project namesake; a malformed project is refused."""

from __future__ import annotations

import pytest

from tests.config_helpers import made_fixture  # noqa: F401 (fixture)
from tests.test_projects import shared_project, twin
from tests.test_terminal import admin, terminal  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_a_terminal_in_another_project(live_hosts, lab, admin, terminal, instances, made):  # noqa: F811
    project = shared_project(made, lab.d1)
    name = instances.make(lab.d1)
    twin(lab.d1, name, project)
    lab.d1.lxc("start", name, "--project", project)
    lab.d1.lxc("exec", name, "--project", project, "--", "sh", "-c", "echo from-the-project > /marker")
    lab.d1.lxc("exec", name, "--", "sh", "-c", "echo from-default > /marker")

    client = terminal(live_hosts, admin, name, project=project)
    assert client.start(command="cat /marker")["type"] == "started"
    client.until_output("from-the-project")
    assert b"from-default" not in bytes(client.output)

    missing = terminal(live_hosts, admin, name, project="no-such-project").start(command="true")
    assert missing["type"] == "error" and missing["status"] == 404
    assert "lab1 has no project no-such-project" in missing["message"]
    malformed = terminal(live_hosts, admin, name, project="a%2Fb").start(command="true")
    assert malformed["type"] == "error" and malformed["status"] == 400
