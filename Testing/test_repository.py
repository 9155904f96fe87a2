"""Rules of the repository: engine boundaries and the README/CI contract."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "Speckle2SelfExtension" / "speckle2self"
FORBIDDEN = {"slicer", "qt", "vtk", "ctk", "PythonQt", "PyQt5", "PyQt6", "PySide2", "PySide6", "vtkmodules"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_imports_no_slicer_qt_or_vtk():
    offenders = {str(p.relative_to(ENGINE)): sorted(_imported_roots(p) & FORBIDDEN) for p in ENGINE.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_engine_does_not_import_torch():
    code = "import sys, speckle2self; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash")[1:3]]
    assert len(blocks) == 2, "README must start with two bash blocks: demo, then tests"
    assert blocks[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
