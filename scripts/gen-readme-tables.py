#!/usr/bin/env python3
"""Writes the README's decoder table from the decoder registry
(src/decode/registry.rs), as `ebpf-exporter decoders` prints it, between the
README's `<!-- decoders: begin -->` and `<!-- decoders: end -->` markers.
--check fails if the committed README differs (scripts/test.sh runs it).
Builds the exporter with cargo if needed."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated import write_or_check  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- decoders: begin (scripts/gen-readme-tables.py writes this table) -->"
END = "<!-- decoders: end -->"


def main() -> int:
    table = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "--bin", "ebpf-exporter", "--", "decoders"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        print(f"README.md has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    new = text[: start + len(BEGIN)] + "\n" + table + text[end:]
    return write_or_check(README, new, ROOT, "scripts/gen-readme-tables.py")


if __name__ == "__main__":
    sys.exit(main())
