import json
import os
import shutil
import subprocess
import sys

import pytest


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("scaleplan ")
    code, out, _ = cli("--help")
    assert code == 0 and "laws" in out


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from scaling_planner.cli import app\n"
            "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY:", f"--help imported {out.strip().splitlines()[-1]}"


def test_laws_list_and_json(cli):
    code, out, _ = cli("laws", "--json")
    names = {row["name"] for row in json.loads(out)}
    assert {"epoch2024", "kaplan2020", "chinchilla-approach1"} <= names
    code, out, _ = cli("laws")
    assert code == 0 and "epoch2024" in out


def test_laws_show_flops_json(cli):
    code, out, err = cli("laws", "show", "epoch2024", "--flops", "1e23", "--json")
    assert code == 0, err
    d = json.loads(out)  # nothing but JSON on stdout
    assert set(d) >= {"name", "params", "tokens", "loss"}
    assert d["params"] == pytest.approx(29.4e9, rel=0.01)
    assert d["tokens"] == pytest.approx(566e9, rel=0.01)


def test_laws_show_allocation_only_has_null_loss(cli):
    code, out, _ = cli("laws", "show", "chinchilla-approach1", "--flops", "5.76e23", "--json")
    d = json.loads(out)
    assert d["loss"] is None and d["params"] == pytest.approx(67e9, rel=0.03)


def test_laws_show_loss_kaplan(cli):
    code, out, _ = cli("laws", "show", "kaplan2020", "--params", "1B", "--json")
    assert json.loads(out)["loss"] == pytest.approx((8.8e13 / 1e9) ** 0.076)


@pytest.mark.parametrize("args,match", [
    (["laws", "show", "epoch2042"], "Did you mean 'epoch2024'"),
    (["laws", "show", "epoch2024", "--flops", "-1"], "--flops must be a finite number > 0"),
    (["laws", "show", "epoch2024", "--flops", "lots"], "--flops"),
    (["laws", "show", "epoch2024", "--flops", "1e23", "--params", "1e9"], "either --flops"),
])
def test_laws_errors_are_one_line(cli, args, match):
    code, out, err = cli(*args)
    assert code == 2 and match in err and "Traceback" not in err
    assert out == ""


@pytest.mark.skipif(shutil.which("scaleplan") is None, reason="scaleplan is not installed on PATH")
def test_installed_catalogue_works_outside_the_checkout(tmp_path):
    env = {**os.environ, "PYTHONPATH": ""}
    r = subprocess.run(["scaleplan", "laws", "show", "epoch2024", "--flops", "1e23", "--json"], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == pytest.approx(29.4e9, rel=0.01)


def test_public_api_exports_resolve():
    import scaling_planner as sp

    for name in sp.__all__:
        assert getattr(sp, name) is not None, name
    assert sp.load_law("epoch2024").optimal(1e23)[0] == pytest.approx(29.4e9, rel=0.01)
