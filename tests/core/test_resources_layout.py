"""ostaf.paths finds resources/ in a checkout, an installed wheel and a PyInstaller bundle,
and pyproject.toml installs it where an installed package looks for it."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from ostaf import paths

ROOT = Path(__file__).resolve().parents[2]


def _package(folder: Path, with_resources: bool) -> Path:
    package = folder / "ostaf"
    package.mkdir(parents=True)
    if with_resources:
        (package / "resources").mkdir()
    (folder / "resources").mkdir()
    return package


def test_checkout_uses_the_folder_next_to_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    package = _package(tmp_path, with_resources=False)
    assert paths.find_resources(package) == tmp_path / "resources"


def test_installed_wheel_uses_the_package_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    package = _package(tmp_path, with_resources=True)
    assert paths.find_resources(package) == package / "resources"


def test_bundle_uses_its_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "_internal"
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    package = _package(tmp_path / "elsewhere", with_resources=True)
    assert paths.find_resources(package) == bundle / "resources"


def test_this_checkout_resolves_its_own_resources() -> None:
    assert paths.RESOURCES == ROOT / "resources"
    assert paths.resource("icons", "app.svg").is_file()


def test_pyproject_installs_resources_as_package_data() -> None:
    """The wheel carries resources/ as `ostaf/resources`, and the package list (spelled out
    because of that mapping) names every package in the tree, so none is left out."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"ostaf.resources": "resources"}
    assert setuptools["package-data"] == {"ostaf.resources": ["**/*"]}
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("ostaf", "ostaf_desktop")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert sorted(setuptools["packages"]) == sorted(in_tree | {"ostaf.resources"})
