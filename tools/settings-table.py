#!/usr/bin/env python3
"""Rewrites README.md's settings table from `staccato --help` (the one source of every setting's name, flag,
default and meaning). Usage: tools/settings-table.py [path/to/staccato]  (default: build/staccato)."""
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build", "staccato")
lines = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout.split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("Settings"))
rows, i = [], start + 1
while i < len(lines):
    m = re.match(r"^  (--[a-z0-9-]+)( \S+)?$", lines[i])
    if not m:
        i += 1
        continue
    env = re.match(r"^      env (\S+), default: ?(.*)$", lines[i + 1])
    i += 2
    meaning = []
    while i < len(lines) and lines[i].startswith("      "):
        meaning.append(lines[i].strip())
        i += 1
    rows.append("| `%s` | `%s` | %s | %s |" % (env.group(1), m.group(1), (env.group(2) or "(empty)").replace("|", "\\|"),
                                               " ".join(meaning).replace("|", "\\|")))
path = os.path.join(root, "README.md")
with open(path, encoding="utf-8") as f:
    readme = f.read().split("\n")
header = readme.index("| variable | flag | default | meaning |")
end = header + 2
while end < len(readme) and readme[end].startswith("| `"):
    end += 1
readme[header + 2:end] = rows
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(readme))
print("README.md: %d settings" % len(rows))
