"""The simulation loop, output, plots and sweep, driven through a stand-in of the bindings
(test_sim_fakelib.py) so they are tested without the library; the same checks against the
real library are in test_sim_scenarios.py."""
import json
from pathlib import Path

import pytest

from switchover.sim import scenario as scn
from switchover.sim import sweep
from switchover.sim.__main__ import main
from switchover.sim.output import dumps, fmt_size, pass_line, print_text, summary_lines, to_json_obj
from switchover.sim.plot import plot_run, plot_sweep, sweep_figure
from switchover.sim.run import Simulation
from test_sim_fakelib import fake_module

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run(name, so=None, **overrides):
    sc = scn.load(SCENARIOS / f"{name}.toml", overrides)
    return Simulation(sc, so=so or fake_module()).run()


@pytest.mark.parametrize("n,text", [(0, "0 B"), (999, "999 B"), (1000, "0.977 KiB"),
                                    (4096, "4 KiB"), (104857600, "100 MiB"),
                                    (123456789, "118 MiB"), (1460288880, "1.36 GiB"),
                                    (1610612736, "1.5 GiB")])
def test_sizes_print_like_qemu_size_to_str(n, text):
    assert fmt_size(n) == text


def test_vgpu_story_through_the_loop():
    res = run("vgpu")
    assert res.converged and res.outcome == "completed"
    assert res.first_stall_ms is not None and res.first_stall_ms < 90_000
    assert res.switchover_at_ms >= 90_000
    assert 1890 <= res.predicted_downtime_ms <= 1960
    # 1.91 GiB at the real 1 GiB/s: within the 2000 ms the operator set
    assert 1900 <= res.simulated_downtime_ms <= 2000 and res.limit_respected


def test_same_seed_same_output_other_seed_differs():
    jittery = {"link.jitter": 0.3, "params.max-bandwidth": 0}
    a = to_json_obj(run("web-server", **jittery), timeline=True)
    b = to_json_obj(run("web-server", **jittery), timeline=True)
    c = to_json_obj(run("web-server", **jittery, **{"sim.seed": 2}), timeline=True)
    assert dumps(a) == dumps(b)
    assert a["timeline"] != c["timeline"]


def test_gives_up_at_max_time():
    res = run("hot-database", **{"sim.max_time_s": 30})
    assert not res.converged and res.outcome == "not converged"
    assert res.end_ms == 30_000
    assert any(e.name == "GAVE_UP" for e in res.events)


def test_cancel_action_ends_the_run():
    res = run("hot-database", actions=[{"at_s": 5, "cancel": True}])
    assert res.outcome == "cancelled" and res.end_ms == 5000


def test_text_output_has_a_line_per_pass_and_a_summary(capsys):
    res = run("vgpu")
    print_text(res)
    out = capsys.readouterr().out
    assert "remaining" in out and "threshold" in out and "exp.down" in out
    assert "operator: set downtime-limit=2000" in out
    assert "switchover" in out and "COMPLETED" in out
    assert "respected: yes" in out
    line = pass_line(res.records[-1])
    assert line.rstrip().endswith("switchover")


def test_summary_of_a_stalled_run_says_no():
    lines = "\n".join(summary_lines(run("hot-database", **{"sim.max_time_s": 60})))
    assert "converged:          no" in lines and "stalls:             1" in lines


def _advice_line(**advice):
    from switchover.sim.run import Result
    res = Result(scenario="s", seed=1, advice={"stalled": True, "passes_since_progress": 5,
                                               **advice})
    (line,) = [x for x in summary_lines(res) if "advice:" in x]
    return line


def test_advice_line_says_which_limit_would_switch_over_or_that_none_would():
    # The vGPU seed example: 1910 ms expected, 10 % headroom -> 2101 ms (docs/qemu-model.md).
    assert _advice_line(expected_downtime_ms=1910, recommended_downtime_ms=2101,
                        beyond_max=False).endswith(
        "expected downtime 1910 ms, a downtime-limit of 2101 ms would switch over")
    # auto-downtime-max 2000 is below the recommendation: still a limit that would work.
    assert _advice_line(expected_downtime_ms=1910, recommended_downtime_ms=2101,
                        beyond_max=True).endswith(
        "a downtime-limit of 2101 ms would switch over (beyond auto-downtime-max)")
    # Above 2,000,000 ms the library flags BEYOND_MAX and recommends 0.
    assert _advice_line(expected_downtime_ms=2_000_001, recommended_downtime_ms=0,
                        beyond_max=True).endswith(
        "more than any downtime-limit can be: no downtime-limit up to 2,000,000 ms would "
        "converge")
    # No recommendation and no flag (no bandwidth estimate yet): nothing is concluded.
    assert _advice_line(expected_downtime_ms=2**63 - 1, recommended_downtime_ms=0,
                        beyond_max=False).endswith("expected downtime inf")


def test_json_is_one_document_with_outcome_and_passes():
    doc = json.loads(dumps(to_json_obj(run("idle-4g"))))
    assert doc["outcome"] == "completed" and doc["converged"] is True
    assert doc["records"] and "pass" in doc["records"][0]
    assert "timeline" not in doc


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "run.png"
    plot_run(run("vgpu"), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_gives_a_map_and_a_heatmap(tmp_path):
    raw = scn.load_raw(SCENARIOS / "vgpu.toml")
    raw["actions"] = []
    axes = [sweep.parse_axis("params.downtime-limit=1000,2000"),
            sweep.parse_axis("ram.dirty_rate_mib_s=1,2")]
    grid = sweep.run_sweep(raw, "vgpu", axes, so=fake_module(), max_time_s=120)
    assert [[r.converged for r in row] for row in grid] == [[False, False], [True, True]]
    table = "\n".join(sweep.table_lines(axes, grid))
    assert "params.downtime-limit \\ ram.dirty_rate_mib_s" in table and "not converged" in table
    doc = sweep.to_json_obj(axes, grid)
    assert len(doc["cells"]) == 4
    path = tmp_path / "map.png"
    plot_sweep(*axes[0], *axes[1], grid, str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"


def _inside_figure(fig, artist):
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return (box.width > 0 and box.x0 >= 0 and box.y0 >= 0
            and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height)


@pytest.mark.parametrize("values", [[1000], [300, 1000, 2000]])
def test_one_axis_sweep_plot_labels_its_x_axis_and_shows_the_whole_title(values):
    import matplotlib.pyplot as plt
    raw = scn.load_raw(SCENARIOS / "vgpu.toml")
    raw["actions"] = []
    axes = [("params.downtime-limit", values)]
    grid = sweep.run_sweep(raw, "vgpu", axes, so=fake_module(), max_time_s=20)
    # The CLI passes an empty second axis for a one-axis sweep.
    fig = sweep_figure("params.downtime-limit", values, "", [""], grid)
    try:
        fig.canvas.draw()
        (ax, *_colorbar) = fig.axes
        assert ax.get_xlabel() == "downtime-limit (ms)"
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in values]
        assert _inside_figure(fig, ax.title), "title cut at the figure's edge"
        assert _inside_figure(fig, ax.xaxis.label)
    finally:
        plt.close(fig)


def test_cli_plot_into_a_missing_directory_under_the_current_one_creates_it(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(SCENARIOS / "idle-4g.toml"), "--quiet", "--plot",
                 "plots/new/vgpu.png"]) == 0
    assert (tmp_path / "plots" / "new" / "vgpu.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_plot_into_a_missing_directory_elsewhere_is_an_error(tmp_path, monkeypatch,
                                                                 capsys):
    # Issue 16: no directories made outside the working tree (a typo in an absolute path).
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    target = tmp_path / "elsewhere" / "vgpu.png"
    assert main([str(SCENARIOS / "idle-4g.toml"), "--quiet", "--plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{target.parent} does not exist" in err
    assert not target.parent.exists()


def test_cli_plot_into_an_impossible_path_is_an_error_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([str(SCENARIOS / "idle-4g.toml"), "--quiet",
                 "--plot", str(blocker / "vgpu.png")]) == 2
    captured = capsys.readouterr()
    assert "--plot" in captured.err and str(blocker) in captured.err
    assert captured.out == ""  # refused before the simulation ran


def test_sweep_axis_syntax_is_checked():
    with pytest.raises(scn.ScenarioError, match="KEY=V1,V2"):
        sweep.parse_axis("params.downtime-limit")
    assert sweep.parse_axis("params.downtime-limit=300, 1000") == (
        "params.downtime-limit", [300, 1000])


def test_cli_reports_scenario_errors_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[ram]\npage_size = 4000\n')
    assert main([str(bad)]) == 2
    assert "ram.page_size" in capsys.readouterr().err
    assert main([str(SCENARIOS / "vgpu.toml"), "--set", "nonsense"]) == 2


def test_postcopy_request_starts_postcopy_and_drains_ram_after_the_switch():
    raw = scn.load_raw(SCENARIOS / "hot-database.toml")
    raw["capabilities"] = {"postcopy-ram": True}
    raw["actions"] = [{"at_s": 20, "postcopy": True}]
    res = Simulation(scn.from_dict(raw), so=fake_module()).run()
    assert res.converged and res.postcopy
    assert res.switchover_at_ms == 20_000
    assert res.end_ms > res.switchover_at_ms
    assert any(e.name == "POSTCOPY" for e in res.events)
