"""The three places that name the course's dependencies agree with each other."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return dict(_split(r) for r in reqs)


def _environment_yml() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = [d for d in env["dependencies"] if isinstance(d, str)]
    return dict(_split(d) for d in names if _split(d)[0] not in {"python", "pip"})


def test_environment_yml_lists_the_same_packages_and_ranges_as_pyproject():
    assert _environment_yml() == _pyproject()


def test_environment_yml_installs_the_course_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections and "-e ." in pip_sections[0]


def test_constraints_pin_every_dependency_inside_its_range():
    from packaging.specifiers import SpecifierSet

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for name, spec in _pyproject().items():
        assert name in pins, f"constraints.txt does not pin {name}"
        assert pins[name] in SpecifierSet(spec), f"{name}=={pins[name]} is outside {spec}"
