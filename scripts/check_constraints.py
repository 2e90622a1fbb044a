"""Say which direct requirements constraints.txt does not pin (or pins differently).

`make install` runs this before installing: a requirement added on a branch and not yet in
constraints.txt still installs (pip only restricts what the constraints name), but its own
dependencies are then not pinned, so this says so and names the fix (`make constraints`).
A requirement pinned to another version than the constraints is an error: pip cannot satisfy
both, and this explains why before pip fails.

Exit status: 0 (possibly with warnings), 1 on a version conflict.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """name -> version of every `name==version` line, following `-r other.txt`."""
    seen = seen or set()
    if path in seen:
        return {}
    seen.add(path)
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        included = re.match(r"^\s*-r\s+(\S+)", line)
        if included:
            found.update(pins(path.parent / included.group(1), seen))
        elif match := PIN.match(line):
            found[canonical(match.group(1))] = match.group(2)
    return found


def main(requirement_files: list[str]) -> int:
    constraints = pins(ROOT / "constraints.txt")
    missing, conflicts = [], []
    for file in requirement_files:
        for name, version in pins(ROOT / file).items():
            if name not in constraints:
                missing.append(f"{name}=={version}")
            elif constraints[name] != version:
                conflicts.append(f"{name}: {file} says {version}, constraints.txt {constraints[name]}")
    if missing:
        print("note: not in constraints.txt yet (their dependencies are not pinned): "
              + ", ".join(sorted(set(missing))) + ". Run `make constraints` and commit it.",
              file=sys.stderr)
    if conflicts:
        print("error: requirements and constraints.txt disagree:\n  " + "\n  ".join(conflicts)
              + "\nRun `make constraints` to pin what the requirements say.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["requirements.txt"]))
