"""What every generator here does with its output: write it, or with
--check fail (and name the generator to run) when the committed file
differs."""

import sys
from pathlib import Path


def write_or_check(out: Path, text: str, root: Path, generator: str) -> int:
    if "--check" in sys.argv[1:]:
        if not out.exists() or out.read_text() != text:
            print(f"{out.relative_to(root)} is out of date: run {generator}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    return 0
