"""environment.yml and pyproject.toml must list the same dependencies."""

import re
import tomllib

from conftest import REPO


def _pip_lines_of_environment() -> set[str]:
    lines = (REPO / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    return {m.group(1).replace(" ", "") for line in lines[start + 1 :] if (m := re.match(r"\s+- (\S.*)$", line))}


def test_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = _pip_lines_of_environment() - {"-e."}
    torch_pin = {d for d in env if d.startswith("torch==")}
    assert torch_pin == {"torch==2.13.0"}
    assert {d for d in env if not d.startswith("torch==")} == {d for d in wanted if not d.startswith("torch")}
    assert any(d.startswith("torch") for d in wanted)


def test_ci_installs_the_cpu_torch_before_the_project():
    ci = (REPO / ".ci" / "setup").read_text()
    assert ci.index("torch==2.13.0") < ci.index('-e ".[dev]"')
