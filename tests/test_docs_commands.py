"""The quick commands of the README and docs/ run as written: every fenced block right after a
`<!-- runs in tests -->` line is run with bash from the repository root, each must exit 0, and
at least one such block exists per page that promises one. A documented command that breaks
(a renamed flag, a moved module, a config that no longer loads) fails here."""

import os
import re
import subprocess
import sys

import pytest

from tests.train.conftest import REPO

MARK = "<!-- runs in tests -->"
PAGES = ["README.md", *(os.path.join("docs", p) for p in sorted(os.listdir(
    os.path.join(REPO, "docs"))) if p.endswith(".md"))]
FENCE = re.compile(re.escape(MARK) + r"\s*\n```(?:bash|sh)\n(.*?)\n```", re.S)


def marked_blocks(text: str) -> list[str]:
    """The bodies of the fenced bash blocks that follow the marker line."""
    return FENCE.findall(text)


def _blocks():
    out = []
    for page in PAGES:
        with open(os.path.join(REPO, page)) as f:
            for k, block in enumerate(marked_blocks(f.read())):
                trains = "--config.train.steps" in block  # a training run: tens of seconds
                out.append(pytest.param(block, id=f"{page}:{k}",
                                        marks=pytest.mark.slow if trains else ()))
    return out


def test_the_marker_finds_only_marked_bash_blocks():
    text = (f"{MARK}\n```bash\necho one\n```\n\n```bash\necho two\n```\n"
            f"{MARK}\n```python\nprint(3)\n```\n{MARK}\n\n```sh\necho four\n```\n")
    assert marked_blocks(text) == ["echo one", "echo four"]


def test_every_docs_page_with_commands_has_a_checked_block():
    blocks = _blocks()
    pages = {b.id.split(":")[0] for b in blocks}
    assert {"docs/training.md", "docs/evaluation.md", "docs/weights.md"} <= pages, pages


@pytest.mark.parametrize("block", _blocks())
def test_documented_command_runs(block, tmp_path):
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "TMPDIR": str(tmp_path),  # `python`: this interpreter
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{block}\n---\n{done.stderr[-3000:]}"
