#!/usr/bin/env python3
"""Checks the shared library's ABI promises (README §ABI):

- SONAME libswitchover.so.<major> (libswitchover.so.0 through 0.x), the major being the
  header's SWITCHOVER_VERSION_MAJOR;
- every defined dynamic symbol is a swo_* function exported under a version node of the
  linker version script, `swo_x@@SWITCHOVER_0.N` (`readelf --dyn-syms`), plus the nodes'
  own definitions; nothing else is exported;
- the version script (abi/switchover.map), the exports and the header agree: a function the
  header declares but the map lacks is not exported (the script's `local: *`) and fails here,
  as does a name in the map that the library does not define.

usage: check-abi.py LIBRARY [MAP HEADER]
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
lib = sys.argv[1]
map_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "abi", "switchover.map")
header = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "include", "switchover.h")
problems = []


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def map_nodes(text):
    """{node: [names]} and the node order of a version script (comments stripped)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#[^\n]*", "", text)
    nodes, order = {}, []
    for m in re.finditer(r"(\w[\w.]*)\s*\{(.*?)\}\s*([\w.]*)\s*;", text, flags=re.S):
        node, body = m.group(1), m.group(2)
        glob = body.split("local:")[0].replace("global:", "")
        nodes[node] = [n.strip() for n in glob.split(";") if n.strip()]
        order.append(node)
    return nodes, order


def header_functions(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return set(re.findall(r"\b(swo_\w+)\s*\([^;{]*?\)\s*;", text, flags=re.S))


major = re.search(r"#define SWITCHOVER_VERSION_MAJOR (\d+)", open(header).read())
soname = f"libswitchover.so.{major.group(1) if major else '?'}"
dyn = run("readelf", "-d", lib)
if f"Library soname: [{soname}]" not in dyn:
    problems.append(f"SONAME is not {soname}:\n{dyn}")

nodes, order = map_nodes(open(map_path).read())
if not order or not all(re.fullmatch(r"SWITCHOVER_0\.\d+|SWITCHOVER_\d+\.\d+", n) for n in order):
    problems.append(f"{map_path}: version nodes {order}, expected SWITCHOVER_<major>.<minor>")
in_map = {}
for node, names in nodes.items():
    for name in names:
        if name in in_map:
            problems.append(f"{map_path}: {name} is in both {in_map[name]} and {node}")
        if "*" in name or "?" in name:
            problems.append(f"{map_path}: {node} has a pattern '{name}': list each name")
        in_map[name] = node

exported = {}
for line in run("readelf", "--dyn-syms", "-W", lib).splitlines():
    f = line.split()
    if len(f) < 8 or not f[0].rstrip(":").isdigit():
        continue
    kind, bind, ndx, name = f[3], f[4], f[6], f[7]
    if ndx == "UND" or bind == "LOCAL":
        continue
    if ndx == "ABS" and name in nodes:
        continue  # a version node's own definition
    base, _, version = name.partition("@@")
    if not base.startswith("swo_"):
        problems.append(f"exported without the swo_ prefix: {line.strip()}")
        continue
    if kind != "FUNC":
        problems.append(f"exported swo_ symbol that is not a function: {line.strip()}")
    if not version:
        problems.append(f"{base} is exported without a version node (want {base}@@SWITCHOVER_…)")
    exported[base] = version

for name, version in sorted(exported.items()):
    if name not in in_map:
        problems.append(f"{name} is exported but not in {map_path}")
    elif version and version != in_map[name]:
        problems.append(f"{name}@@{version}, but the map puts it in {in_map[name]}")
for name in sorted(set(in_map) - set(exported)):
    problems.append(f"{name} is in {map_path} but the library does not export it")
declared = header_functions(open(header).read())
for name in sorted(declared - set(exported)):
    problems.append(f"{name} is declared in {header} but not exported: add it to {map_path}")
for name in sorted(set(exported) - declared):
    problems.append(f"{name} is exported but not declared in {header}")
if "swo_session_new" not in exported:
    problems.append("swo_session_new is not exported")

if problems:
    sys.exit("ABI check failed:\n  " + "\n  ".join(problems))
per_node = ", ".join(f"{n}: {len(nodes[n])}" for n in order)
print(f"SONAME {soname}; {len(exported)} swo_* functions exported, each as "
      f"swo_x@@<node> of {os.path.basename(map_path)} ({per_node}); header, map and exports agree")
