#!/usr/bin/env python3
"""Copy the templates of this folder into src/cli/cmd_submit.c as C string literals.

`rdmlearn submit` carries its own copy of slurm/rdmlearn.sbatch.in and slurm/submit.sh.in, so
an installed binary needs no source tree. After editing a template, run
    python3 slurm/embed_templates.py
tests/cli/test_submit.sh fails when the two copies differ.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src", "cli", "cmd_submit.c")


def literal(var, path):
    lines = open(path).read().split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    out = ["static const char %s[] =" % var]
    for line in lines:
        if "??" in line or not line.isascii():
            raise SystemExit("embed_templates: %s: keep templates ASCII and free of ?? "
                             "(a C trigraph): %r" % (path, line))
    out += ["    " + json.dumps(line + "\n") for line in lines]
    return "\n".join(out) + ";\n"


text = open(SRC).read()
for var, name in (("sbatch_template", "rdmlearn.sbatch.in"), ("driver_template", "submit.sh.in")):
    pat = re.compile(r"static const char %s\[\] =\n(?:    \"[^\n]*\n)+?(?:    \"[^\n]*;\n)" % var)
    new, n = pat.subn(lambda m: literal(var, os.path.join(HERE, name)), text)
    if n != 1:
        raise SystemExit("embed_templates: %s not found once in %s" % (var, SRC))
    text = new
open(SRC, "w").write(text)
print("embed_templates: updated", os.path.normpath(SRC))
