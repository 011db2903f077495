"""The locked environment: uv.lock pins a tested set, `make` refuses a stale lock."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from helpers.common import LOCK_FILE, REPO_ROOT

PINNED = ("torch", "torchvision", "hydra-core", "omegaconf")


def _locked() -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(LOCK_FILE.read_text())["package"]:
        if "version" in package:
            versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_the_lock_holds_no_pre_release() -> None:
    pre = {n: v for n, vs in _locked().items() for v in vs if Version(v).is_prerelease}
    assert not pre, f"pre-releases in uv.lock: {pre}"


def test_torch_torchvision_hydra_omegaconf_are_pinned_to_the_locked_release() -> None:
    constraints = [Requirement(r) for r in _pyproject()["tool"]["uv"]["constraint-dependencies"]]
    pins = {r.name: r.specifier for r in constraints}
    locked = _locked()
    for name in PINNED:
        (spec,) = pins[name]  # exactly one clause
        assert spec.operator == "==", f"{name}: {spec}"
        assert locked[name] == {spec.version}, f"{name}: lock {locked[name]} vs pin {spec}"


def test_the_installed_packages_are_the_locked_ones() -> None:
    locked = _locked()
    wrong = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in locked and name != "tinymem" and dist.version not in locked[name]:
            wrong[name] = (dist.version, sorted(locked[name]))
    assert not wrong, f"installed (version, locked): {wrong}; run `make install`"
    for name in PINNED:
        assert metadata.version(name) in locked[name]


def _uv() -> str:
    found = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is neither on PATH nor bootstrapped in .tools/ (make install)"
    return found


def _check_lock(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "check-lock", f"UV={_uv()}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_range_changed_without_relocking_fails_and_says_make_lock(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    current = _check_lock(tmp_path)
    assert current.returncode == 0, current.stdout + current.stderr
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"timm>=1.0",' in text
    pyproject.write_text(text.replace('"timm>=1.0",', '"timm>=1.0.1",'))
    stale = _check_lock(tmp_path)
    assert stale.returncode != 0
    assert "run 'make lock'" in stale.stdout + stale.stderr
