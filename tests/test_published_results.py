"""Every published number comes from one generated results file: the main job's (benchmarks/main_job.py) and
twrvae-yelp's, written into the pages by scripts/render_results.py (and the comparisons' plots copied beside them),
whose --check says whether a page or a figure disagrees."""

import json
import subprocess
import sys

from helpers import REPO_ROOT, load_benchmark

RESULTS = REPO_ROOT / "benchmarks" / "results"


def test_the_pages_show_the_numbers_of_their_results_files():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "render_results.py"), "--check"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    yelp = json.loads((RESULTS / "yelp" / "test_results.json").read_text())
    page = (REPO_ROOT / "docs" / "yelp.md").read_text()
    assert f"{yelp['reconstruction_bleu']:.1f}" in page and yelp["weights_sha256"][:12] in page
    main_job = json.loads((RESULTS / "main_job-cpu.json").read_text())["test_results"]
    kept = f"{100 * main_job['facts_kept']['mean']['kept']:.1f}%"
    for name in ("README.md", "docs/latent-space.md"):
        assert kept in (REPO_ROOT / name).read_text(), name
    assert main_job["weights_sha256"][:12] in (REPO_ROOT / "docs" / "results.md").read_text()


def test_the_check_finds_a_page_that_disagrees(tmp_path, monkeypatch):
    render = load_benchmark("render_results", folder=REPO_ROOT / "scripts")
    readme = tmp_path / "README.md"
    readme.write_text((REPO_ROOT / "README.md").read_text().replace("What it shows, plainly", "What it shows"))
    monkeypatch.setattr(render, "PAGES", [(readme, "main-job", "main job summary")])
    assert render.main(["--check"]) == 1
    assert render.main([]) == 0 and render.main(["--check"]) == 0  # written back from the file


def test_the_check_finds_a_figure_that_is_not_its_results_file_s(tmp_path, monkeypatch):
    render = load_benchmark("render_results", folder=REPO_ROOT / "scripts")
    monkeypatch.setattr(render, "PAGES", [])
    plot = tmp_path / "table2-yelp-sentiment.png"
    plot.write_bytes((RESULTS / "table2-yelp-sentiment.png").read_bytes())
    copy = tmp_path / "docs" / "table2-yelp.png"
    copy.parent.mkdir()
    copy.write_bytes((REPO_ROOT / "docs" / "table2.png").read_bytes())  # another comparison's plot
    monkeypatch.setattr(render, "FIGURES", [(plot, copy)])
    assert render.main(["--check"]) == 1
    assert render.main([]) == 0 and render.main(["--check"]) == 0
    assert copy.read_bytes() == plot.read_bytes()
    copy.unlink()  # a figure not copied yet is out of date too
    assert render.main(["--check"]) == 1


def test_the_main_job_record_holds_its_machine_time_config_and_results(tmp_path, monkeypatch):
    main_job = load_benchmark("main_job")
    results = {"iw_nll": 1.0, "weights_sha256": "f" * 64}

    real_run = subprocess.run

    def fake_demo(command, **kwargs):
        if command[:2] != ["bash", "scripts/demo.sh"]:  # git, asked for the commit
            return real_run(command, **kwargs)
        assert kwargs["check"]
        (tmp_path / "demo").mkdir()
        (tmp_path / "demo" / "test_results.json").write_text(json.dumps(results))

    monkeypatch.setattr(main_job.subprocess, "run", fake_demo)
    record = main_job.main(["--data_dir", "DATA", "--output_dir", str(tmp_path / "demo"), "--results_dir",
                            str(tmp_path / "results")])  # fmt: skip
    saved = json.loads((tmp_path / "results" / "main_job-cpu.json").read_text())
    assert saved == record and saved["test_results"] == results
    assert saved["config"]["max_train_steps"] > 0 and saved["seconds"] >= 0
    assert {"cpu", "cpu_flags", "load_average_1min", "git_commit", "torch"} <= set(saved["machine"])
