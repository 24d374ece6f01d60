"""The PyInstaller spec runs, takes its version from pyproject.toml, ships resources/, builds a
windowed app per platform and leaves out what the app never opens. PyInstaller itself is
replaced by recorders: building the bundle is .ci/run's job (minutes, not seconds)."""

from __future__ import annotations

import sys
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "ostaf.spec"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

# Module names the stand-in for collect_submodules offers to the spec's filters.
SUBMODULES = {
    "diffusers": [
        "diffusers.models.unets.unet_2d_condition",
        "diffusers.models.vae_flax",
        "diffusers.schedulers.scheduling_ddim",
        "diffusers.pipelines.pipeline_utils",
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
        "diffusers.pipelines.stable_diffusion.pipeline_onnx_stable_diffusion",
        "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl",
        "diffusers.pipelines.flux.pipeline_flux",
    ],
    "transformers": [
        "transformers.generation.utils",
        "transformers.models.clip.modeling_clip",
        "transformers.models.clip.tokenization_clip",
        "transformers.models.llama.modeling_llama",
        "transformers.commands.serving",
    ],
}


@dataclass
class SpecRun:
    """What the spec handed to each PyInstaller build step."""

    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
    namespace: dict[str, Any] = field(default_factory=dict)

    def kwargs(self, step: str) -> dict[str, Any]:
        return self.calls[step][1]


def run_spec(
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    binaries: list[tuple[str, str, str]] | None = None,
    datas: list[tuple[str, str, str]] | None = None,
) -> SpecRun:
    run = SpecRun()

    class Analysis:
        def __init__(self, scripts: list[str], **kwargs: Any) -> None:
            run.calls["Analysis"] = ((scripts,), kwargs)
            self.binaries = list(binaries or [])
            self.datas = [(dest, src, "DATA") for src, dest in kwargs["datas"]] + list(datas or [])
            self.pure: list[Any] = []
            self.scripts: list[Any] = []

    def recorder(step: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> str:
            run.calls[step] = (args, kwargs)
            return step

        return record

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, filter=bool: [  # type: ignore[attr-defined]
        name for name in SUBMODULES[package] if filter(name)
    ]
    hooks.copy_metadata = lambda name, recursive=False: [  # type: ignore[attr-defined]
        (f"/site-packages/{name}.dist-info", f"{name}.dist-info")
    ]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv("OSTAF_CODESIGN_IDENTITY", raising=False)
    run.namespace = {
        "SPECPATH": str(SPEC.parent),
        "Analysis": Analysis,
        **{step: recorder(step) for step in ("PYZ", "EXE", "COLLECT", "BUNDLE")},
    }
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), run.namespace)
    return run


def test_macos_bundle_takes_its_version_from_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec(monkeypatch, "darwin")
    assert run.namespace["VERSION"] == VERSION
    bundle = run.kwargs("BUNDLE")
    assert bundle["name"] == "OSTAF.app" and bundle["version"] == VERSION
    plist = bundle["info_plist"]
    assert plist["CFBundleShortVersionString"] == VERSION == plist["CFBundleVersion"]
    assert plist["NSHighResolutionCapable"] is True
    assert plist["LSMinimumSystemVersion"]
    assert bundle["bundle_identifier"].count(".") >= 2
    assert Path(bundle["icon"]).name == "app.icns" and Path(bundle["icon"]).is_file()
    assert run.kwargs("EXE")["console"] is False


def test_windows_exe_is_windowed_with_its_icon(monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec(monkeypatch, "win32")
    exe = run.kwargs("EXE")
    assert exe["console"] is False and exe["upx"] is False and exe["name"] == "ostaf"
    assert Path(exe["icon"]).name == "app.ico" and Path(exe["icon"]).is_file()
    assert "BUNDLE" not in run.calls


def test_analysis_ships_resources_and_the_lazily_imported_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = run_spec(monkeypatch, "linux")
    (scripts,), analysis = run.calls["Analysis"]
    assert scripts == [str(ROOT / "main.py")]
    assert (str(ROOT / "resources"), "resources") in analysis["datas"]
    assert ("/site-packages/diffusers.dist-info", "diffusers.dist-info") in analysis["datas"]
    assert {"tkinter", "pytest", "matplotlib"} <= set(analysis["excludes"])
    assert sorted(analysis["hiddenimports"]) == [
        "diffusers.models.unets.unet_2d_condition",
        "diffusers.pipelines.pipeline_utils",
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
        "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl",
        "diffusers.schedulers.scheduling_ddim",
        "transformers.generation.utils",
        "transformers.models.clip.modeling_clip",
        "transformers.models.clip.tokenization_clip",
    ]


def test_linux_bundle_leaves_out_tests_duplicates_and_translations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = "/site-packages"
    binaries = [
        ("torch/lib/libtorch_cpu.so", f"{site}/torch/lib/libtorch_cpu.so", "BINARY"),
        ("libtorch_cpu.so", f"{site}/torch/lib/libtorch_cpu.so", "BINARY"),
        ("torch/lib/libtorchbind_test.so", f"{site}/torch/lib/libtorchbind_test.so", "BINARY"),
        ("torch/bin/torch_shm_manager", f"{site}/torch/bin/torch_shm_manager", "BINARY"),
        ("libQt6Core.so.6", f"{site}/PySide6/Qt/lib/libQt6Core.so.6", "BINARY"),
    ]
    datas = [
        ("torch/bin/test_api", f"{site}/torch/bin/test_api", "DATA"),
        ("torch/test/Dict_test", f"{site}/torch/test/Dict_test", "DATA"),
        ("torch/include/ATen/Tensor.h", f"{site}/torch/include/ATen/Tensor.h", "DATA"),
        ("PySide6/Qt/translations/qtbase_de.qm", f"{site}/qtbase_de.qm", "DATA"),
        ("torch/utils/model_dump/code.js", f"{site}/torch/utils/model_dump/code.js", "DATA"),
    ]
    run = run_spec(monkeypatch, "linux", binaries, datas)
    collected_binaries, collected_datas = run.calls["COLLECT"][0][1:3]
    assert [dest for dest, *_ in collected_binaries] == [
        "torch/lib/libtorch_cpu.so",
        "torch/bin/torch_shm_manager",
        "libQt6Core.so.6",
    ]
    assert [dest for dest, *_ in collected_datas if not dest.endswith(".dist-info")] == [
        "resources",
        "torch/utils/model_dump/code.js",
    ]
    assert run.kwargs("COLLECT")["upx"] is False and run.kwargs("COLLECT")["name"] == "ostaf"
