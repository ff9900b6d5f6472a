"""The simulator as a tool people rely on (issue 16, items 4-6): a plot that tells its story,
input checks with distinct exit statuses, and the scenario format documented from the
loader's own key table. Against the real library (the CLI as users run it)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchover.sim import docs, scenario as scn
from switchover.sim.__main__ import EXIT_CODES, main
from switchover.sim.output import HEADER, fmt_size, summary_lines
from switchover.sim.plot import axis_label, run_figure, sweep_figure
from switchover.sim.run import Simulation
from switchover.sim import sweep

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="module")
def vgpu():
    return Simulation(scn.load(SCENARIOS / "vgpu.toml")).run()


# -- item 4: the demo plot and the text around it ------------------------------------------

def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts]


def _box(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_the_demo_plot_carries_its_figures(vgpu):
    import matplotlib.pyplot as plt
    fig = run_figure(vgpu)
    try:
        fig.canvas.draw()
        texts = [t.get_text() for t in _texts(fig)]
        stall = next(e for e in vgpu.events if e.name == "MIGRATION_STALL")
        advice = stall.data["recommended-downtime"]
        assert any(f"advice {advice} ms" in t for t in texts), texts
        assert any("limit → 2000 ms" in t for t in texts), texts
        assert any(f"downtime {vgpu.simulated_downtime_ms} ms ≤ 2000 ms" in t
                   for t in texts), texts
        assert f"downtime {vgpu.simulated_downtime_ms} ms ≤ limit 2000 ms" in \
            fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_legends_sit_outside_the_axes_and_notes_do_not_overlap(vgpu):
    import matplotlib.pyplot as plt
    fig = run_figure(vgpu)
    try:
        fig.canvas.draw()
        top, bottom = fig.axes[:2]
        for ax in (top, bottom):
            legend = _box(fig, ax.get_legend())
            assert legend.x0 >= _box(fig, ax).x1, "a legend over the data"
            assert legend.x1 <= fig.bbox.width, "a legend cut at the figure's edge"
        notes = [t.get_bbox_patch().get_window_extent(fig.canvas.get_renderer())
                 for t in bottom.texts]   # the text boxes (not their arrows)
        assert len(notes) == 3
        for i, a in enumerate(notes):
            assert a.x0 >= 0 and a.x1 <= fig.bbox.width
            for b in notes[i + 1:]:
                assert not a.overlaps(b), "two notes on top of each other"
        # The star is not under a note: its point lies outside every note's box.
        star = bottom.transData.transform((vgpu.switchover_at_ms / 1000,
                                           vgpu.simulated_downtime_ms))
        assert not any(n.contains(*star) for n in notes)
    finally:
        plt.close(fig)


def test_the_pass_table_headers_carry_units():
    assert "time (s)" in HEADER and "exp.down ms" in HEADER and "limit ms" in HEADER


def test_the_stall_note_gives_sizes_in_the_table_units(vgpu):
    stall = next(r for r in vgpu.records if any("stall" in n for n in r.notes))
    note = next(n for n in stall.notes if "stall" in n)
    ev = next(e for e in vgpu.events if e.name == "MIGRATION_STALL")
    assert f"remaining={fmt_size(ev.data['remaining'])}" in note
    assert f"best-remaining={fmt_size(ev.data['best-remaining'])}" in note
    assert f"recommended-downtime={ev.data['recommended-downtime']} ms" in note
    assert str(ev.data["remaining"]) not in note


def test_the_summary_of_a_run_that_converged_after_a_stall_includes_the_advice(vgpu):
    ev = next(e for e in vgpu.events if e.name == "MIGRATION_STALL")
    (line,) = [x for x in summary_lines(vgpu) if "advice:" in x]
    assert f"a downtime-limit of {ev.data['recommended-downtime']} ms would switch over" in line
    assert "at the stall (62.1 s)" in line or "at the stall (" in line


@pytest.mark.parametrize("key, label", [
    ("params.downtime-limit", "downtime-limit (ms)"),
    ("ram.dirty_rate_mib_s", "guest dirty rate (MiB/s)"),
    ("link.bandwidth", "link bandwidth (bytes/s)"),
    ("devices.0.stop_copy", "device 0 stop copy (bytes)"),
    ("params.avail-switchover-bandwidth", "avail-switchover-bandwidth (bytes/s)"),
])
def test_sweep_axes_are_labelled_with_units_not_raw_keys(key, label):
    assert axis_label(key) == label


def test_the_sweep_map_names_the_scenario_and_prints_cells_like_the_table():
    import matplotlib.pyplot as plt
    raw = scn.load_raw(SCENARIOS / "web-server.toml")
    axes = [("params.downtime-limit", [300, 1000]), ("ram.dirty_rate_mib_s", [50])]
    grid = sweep.run_sweep(raw, "web-server", axes, max_time_s=120)
    fig = sweep_figure(*axes[0], *axes[1], grid, "web-server")
    try:
        ax = fig.axes[0]
        assert ax.get_title().startswith("web-server: convergence map")
        assert ax.get_xlabel() == "guest dirty rate (MiB/s)"
        assert ax.get_ylabel() == "downtime-limit (ms)"
        table = "\n".join(sweep.table_lines(axes, grid))
        for t in ax.texts:
            first = t.get_text().split("\n")[0]
            assert first in table, (first, table)   # "4.2 s" in both, not "4 s"
    finally:
        plt.close(fig)


def test_cli_plot_formats_by_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(SCENARIOS / "idle-4g.toml"), "--quiet", "--plot", "run.svg"]) == 0
    assert "<svg" in (tmp_path / "run.svg").read_text()[:2000]


@pytest.mark.parametrize("name", ["run.txt", "run"])
def test_cli_plot_with_an_unknown_or_no_suffix_is_refused_before_the_run(name, tmp_path,
                                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([str(SCENARIOS / "idle-4g.toml"), "--quiet", "--plot", name]) == 2
    captured = capsys.readouterr()
    assert f"--plot {name}:" in captured.err and ".png" in captured.err
    assert captured.out == "" and not (tmp_path / name).exists()


# -- item 5: input checks, exit statuses ----------------------------------------------------

def _cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    return subprocess.run([sys.executable, "-m", "switchover.sim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_an_empty_scenario_file_is_an_error_saying_the_minimum(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    done = _cli([str(empty)], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{empty} is empty" in done.stderr and '[ram] size = "4GiB"' in done.stderr
    only_params = tmp_path / "p.toml"
    only_params.write_text("[params]\ndowntime-limit = 500\n")
    assert "has no [ram] size" in _cli([str(only_params)], tmp_path).stderr


@pytest.mark.parametrize("args, needle", [
    (["--max-time", "0"], "--max-time 0: must be a positive"),
    (["--max-time", "-5"], "--max-time -5: must be a positive"),
    (["--max-time", "nan"], "--max-time nan"),
    (["--every", "-1"], "--every -1: must be 0"),
    (["--timeline"], "--timeline adds the per-tick timeline to the JSON document"),
    (["--sweep", "params.downtime-limit=100,,300"], "an empty value (value 2 of 3)"),
    (["--sweep", "params.downtime-limit=100,300", "params.downtime-limit=1000"],
     "params.downtime-limit is on both axes"),
    (["--sweep", "params.downtime-limit=100,100"], "a value appears twice"),
    (["--sweep", "params.downtime-limit=100", "--hmp"], "--hmp describes a single run"),
    (["--set", "params.downtime-limit=-300"], "params.downtime-limit = -300: "),
    (["--set", "ram.zero_share=2"], "ram.zero_share = 2: must be at most 1"),
    (["--plot", "/nonexistent-switchover-dir/x.png"],
     "/nonexistent-switchover-dir does not exist"),
])
def test_bad_options_exit_2_naming_the_value_before_anything_runs(args, needle, tmp_path):
    done = _cli([str(SCENARIOS / "idle-4g.toml"), "--quiet", *args], tmp_path)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not Path("/nonexistent-switchover-dir").exists()


def test_a_run_that_does_not_switch_over_exits_3_and_one_that_does_exits_0(tmp_path):
    # hot-database: 300 ms cannot hold what the guest dirties (README); 60 s are enough to
    # see it stall without converging.
    stuck = _cli([str(SCENARIOS / "hot-database.toml"), "--quiet", "--max-time", "60"],
                 tmp_path)
    assert stuck.returncode == 3, stuck.stderr
    assert "NOT CONVERGED" in stuck.stdout and "exit status 3: no switchover" in stuck.stderr
    ok = _cli([str(SCENARIOS / "idle-4g.toml"), "--quiet"], tmp_path)
    assert ok.returncode == 0 and "COMPLETED" in ok.stdout
    # --json: the document alone on stdout, the status says the outcome.
    js = _cli([str(SCENARIOS / "hot-database.toml"), "--json", "--max-time", "60"], tmp_path)
    assert js.returncode == 3 and json.loads(js.stdout)["converged"] is False


def test_hmp_with_json_puts_info_migrate_in_each_record(tmp_path):
    done = _cli([str(SCENARIOS / "idle-4g.toml"), "--json", "--hmp"], tmp_path)
    assert done.returncode == 0
    records = json.loads(done.stdout)["records"]
    # The HMP `info migrate` text of each printed pass.
    assert records and all(r["hmp"].startswith("Status:") for r in records if "hmp" in r)
    assert any("hmp" in r for r in records)


# -- item 6: the scenario format, documented from the loader's table -----------------------

def test_docs_scenarios_md_is_generated_from_the_key_table():
    committed = (ROOT / "docs" / "scenarios.md").read_text()
    assert committed == docs.markdown(), (
        "docs/scenarios.md is stale: PYTHONPATH=python python3 -m switchover.sim.docs "
        "> docs/scenarios.md")


def test_every_key_of_the_table_is_in_the_docs_with_its_unit_and_default():
    text = (ROOT / "docs" / "scenarios.md").read_text()
    for k in scn.KEYS:
        assert any(line.startswith(f"| `{k.name}` |") and f"| {k.unit} |" in line
                   and docs._default(k) in line for line in text.splitlines()), k.path


def test_the_table_defaults_are_what_the_loader_gives():
    sc = scn.from_dict({})
    rows = {k.path: k for k in scn.KEYS}
    assert sc.seed == rows["sim.seed"].default
    assert sc.tick_ms == rows["sim.tick_ms"].default
    assert sc.max_time_s == rows["sim.max_time_s"].default
    assert sc.ram.size == scn.parse_size(rows["ram.size"].default, "x")
    assert sc.ram.page_size == rows["ram.page_size"].default
    assert sc.ram.zero_page_wire_bytes == rows["ram.zero_page_wire_bytes"].default
    assert sc.link.bandwidth == scn.parse_rate(rows["link.bandwidth"].default, "x")
    dev = scn.from_dict({"devices": [{"stop_copy": 1}]}).devices[0]
    assert dev.lie_factor == rows["devices[].lie_factor"].default
    assert dev.fault == rows["devices[].fault"].default


def test_a_key_missing_from_the_table_is_refused():
    with pytest.raises(scn.ScenarioError, match=r"ram\.colour: unknown key"):
        scn.from_dict({"ram": {"colour": 1}})


def _minimal(table, name, value):
    raw = {"ram": {"size": "1GiB"}}
    if table == "devices[]":
        raw["devices"] = [{"stop_copy": 1, name: value}]
    elif table == "actions[]":
        raw["actions"] = [{"at_s": 1, "cancel": True, name: value}]
    elif table == "ram.dirty_rate_mib_s[]":
        entry = {"at_s": 0, "dirty_rate_mib_s": 1, name: value}
        raw["ram"]["dirty_rate_mib_s"] = [entry]
    elif table:
        raw.setdefault(table, {})[name] = value
    else:
        raw[name] = value
    return raw


@pytest.mark.parametrize("key", [k for k in scn.KEYS if k.kind in ("number", "integer")
                                 and (k.lo is not None or k.hi is not None)],
                         ids=lambda k: k.path)
def test_every_range_in_the_table_is_enforced_naming_the_key_and_value(key):
    outside = []
    if key.lo is not None:
        outside.append(key.lo - 1 if key.kind == "integer" else key.lo - abs(key.lo or 1) / 2)
    if key.hi is not None and key.hi < 2**63:
        outside.append(key.hi + 1)
    for value in outside:
        if key.kind == "integer":
            value = int(math.floor(value))
        path = key.path.replace("[]", "[0]")
        with pytest.raises(scn.ScenarioError) as refused:
            scn.from_dict(_minimal(key.table, key.name, value))
        assert str(refused.value).startswith(f"{path} = {value}: "), str(refused.value)


def test_help_points_to_the_scenario_docs_and_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "docs/scenarios.md" in out
    for code, _ in EXIT_CODES:
        assert f"  {code}  " in out
