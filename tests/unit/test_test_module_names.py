"""pytest's default import mode puts every test directory on sys.path, so two
test files with the same basename anywhere under ``testpaths`` make the whole
collection fail ("import file mismatch") — but only when both are collected in
one run, which is what ``make test`` does and a single-directory run does not.
"""

import collections
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _testpaths():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["pytest"]["ini_options"]["testpaths"]


def test_testpaths_are_the_three_suites():
    assert _testpaths() == ["tests/unit", "tests/integration", "tests/lab"]


def test_no_two_test_modules_share_a_basename():
    seen = collections.defaultdict(list)
    for testpath in _testpaths():
        for path in (ROOT / testpath).rglob("*.py"):
            if path.name.startswith("test_"):
                seen[path.name].append(str(path.relative_to(ROOT)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
