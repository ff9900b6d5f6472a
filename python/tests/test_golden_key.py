"""The golden report files (c-tests/golden/) against the reviewer's key (c-tests/golden/key.toml),
figure by figure.

The golden files are written by the code under test (scripts/update-golden.sh), so on their
own they only say "nothing changed". The key is the independent half: every figure of every
golden file, JSON and HMP text, with the inputs of c-tests/test_report.c, the rule from QEMU
it follows (docs/qemu-model.md, with QEMU's function) and the figure worked by hand. This test
fails when a golden figure differs from its key row, when a figure has no key row, and when a
key row matches nothing (a stale key)."""
import json
import os
import re
import tomllib

import pytest

from conftest import REPO

GOLDEN = os.path.join(REPO, "c-tests", "golden")
KEY = os.path.join(GOLDEN, "key.toml")
STATUSES = ["none", "setup", "active", "pre-switchover", "device", "completed", "cancelling",
            "cancelled", "failed", "postcopy-active"]


def json_figures(doc, prefix=""):
    """{"ram.transferred": 12500000, ...}: every leaf of the document by its dotted path."""
    out = {}
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(json_figures(v, path + "."))
        else:
            out[path] = v
    return out


HMP_LINE = re.compile(r"^ *([^:\t]+): \t+(.*)$")


def hmp_figures(text):
    """{"hmp:Time (ms).total": "1014", "hmp:Remaining": "0.993 GiB", ...}: every value of the
    `info migrate` text, by its line label and, for `k=v, k=v` lines, its key. Values are the
    text as printed. `RAM info:` carries no figure."""
    out = {}
    for line in text.splitlines():
        if line == "RAM info:":
            continue
        m = HMP_LINE.match(line)
        assert m, f"not an info migrate line: {line!r}"
        label, value = m.groups()
        if label != "Status" and "=" in value:
            for item in value.split(", "):
                k, _, v = item.partition("=")
                out[f"hmp:{label}.{k}"] = v
        else:
            out[f"hmp:{label}"] = value
    return out


def golden_figures(status):
    with open(os.path.join(GOLDEN, f"{status}.json")) as f:
        text = f.read()
    assert text.endswith("}\n") or text == "{}\n"
    figures = json_figures(json.loads(text))
    with open(os.path.join(GOLDEN, f"{status}.txt")) as f:
        figures.update(hmp_figures(f.read()))
    return figures


def load_key():
    with open(KEY, "rb") as f:
        key = tomllib.load(f)
    rows = key["figure"]
    for i, row in enumerate(rows):
        missing = {"files", "member", "expected", "inputs", "formula"} - set(row)
        assert not missing, f"key row {i} ({row.get('member')}) lacks {sorted(missing)}"
        files = row["files"]
        assert files == "*" or (isinstance(files, list) and set(files) <= set(STATUSES)), row
    return rows


def expected_for(rows, status, member):
    """The key row for one figure: the row naming the file, else a row for every file ("*")."""
    specific = [r for r in rows if r["files"] != "*" and status in r["files"]
                and r["member"] == member]
    assert len(specific) <= 1, f"{status}: {member} has {len(specific)} key rows"
    if specific:
        return specific[0]
    general = [r for r in rows if r["files"] == "*" and r["member"] == member]
    assert len(general) <= 1, f"{member} has {len(general)} key rows for every file"
    return general[0] if general else None


def test_every_status_has_its_two_golden_files():
    names = sorted(os.listdir(GOLDEN))
    for status in STATUSES:
        assert f"{status}.json" in names and f"{status}.txt" in names


@pytest.mark.parametrize("status", STATUSES)
def test_every_golden_figure_equals_its_hand_worked_key_row(status):
    rows = load_key()
    figures = golden_figures(status)
    uncovered, wrong = [], []
    for member, value in figures.items():
        row = expected_for(rows, status, member)
        if row is None:
            uncovered.append(f"{member} = {value!r}")
        elif value != row["expected"] or type(value) is not type(row["expected"]):
            wrong.append(f"{member}: golden {value!r}, key {row['expected']!r} "
                         f"({row['formula']})")
    assert not wrong, f"{status}: figures that differ from the key:\n" + "\n".join(wrong)
    assert not uncovered, f"{status}: figures without a key row:\n" + "\n".join(uncovered)


def test_every_key_row_matches_a_golden_figure():
    rows = load_key()
    figures = {s: golden_figures(s) for s in STATUSES}
    stale = []
    for row in rows:
        files = STATUSES if row["files"] == "*" else row["files"]
        hits = [s for s in files if row["member"] in figures[s]]
        if not hits or (row["files"] != "*" and len(hits) != len(files)):
            stale.append(f"{row['member']} in {row['files']} (found in {hits})")
    assert not stale, "key rows that match no golden figure:\n" + "\n".join(stale)


def test_the_key_test_fails_on_a_changed_figure():
    # The check above must be able to fail: one figure changed in a copy of a golden file.
    rows = load_key()
    figures = golden_figures("active")
    figures["ram.transferred"] += 1
    row = expected_for(rows, "active", "ram.transferred")
    assert row is not None and figures["ram.transferred"] != row["expected"]
