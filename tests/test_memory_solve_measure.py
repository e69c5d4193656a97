"""Issue 12 new capabilities: the model-state view, the one fit rule, the "what fits" solver, --measure (no GPU:
plan building, result parsing, error paths, the start-up import rule)."""

import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from scaling_planner.errors import ScalePlanError
from scaling_planner.hardware import get_gpu
from scaling_planner.memory import MemoryConfig, estimate_memory
from scaling_planner.memory.fit import FIT_HEADROOM, fits_gpu, usable_gib
from scaling_planner.memory.solve import solve
from scaling_planner.model import PRESETS, ModelShape
from scaling_planner.units import GIB

LLAMA8B = PRESETS["llama-3-8b"]
RTX4090 = get_gpu("rtx4090")


# ---------------------------------------------------------------------------- model-state view (ZeRO paper Fig. 1)
def _zero_paper_shape():
    base = ModelShape(vocab=32000, d_model=4096, n_layers=32, n_heads=32)
    return ModelShape(vocab=32000, d_model=4096, n_layers=32, n_heads=32,
                      extra_params=7_500_000_000 - base.params_total)


@pytest.mark.parametrize("zero, gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_model_states_match_zero_paper_figure_1(zero, gb):
    # Rajbhandari et al. 2020 Fig. 1: Ψ = 7.5B, N_d = 64, K = 12 (mixed precision Adam): 120 / 31.4 / 16.6 / 1.9 GB
    shape = _zero_paper_shape()
    assert shape.params_total == 7_500_000_000
    est = estimate_memory(shape, MemoryConfig(precision="mixed", zero=zero, gpus=64, framework="generic"))
    assert round(sum(est.model_states.values()) / 1e9, 1) == gb
    ms = est.to_dict()["model_states_gib"]
    assert set(ms) == {"weights", "gradients", "optimizer", "total"}
    assert ms["total"] == pytest.approx(gb * 1e9 / GIB, abs=0.06)
    assert ms["weights"] == pytest.approx((15.0 if zero < 3 else 15 / 64) * 1e9 / GIB, rel=1e-3)


def test_model_states_are_resident_even_when_the_peak_phase_has_no_gradients():
    est = estimate_memory(LLAMA8B, MemoryConfig(method="qlora", framework="hf", seq_len=1024))
    ms = est.to_dict()["model_states_gib"]
    assert ms["gradients"] > 0  # adapters' gradients count in the model states ...
    assert ms["total"] == pytest.approx(ms["weights"] + ms["gradients"] + ms["optimizer"], abs=1e-3)


def test_terminal_shows_model_states_line(cli):
    code, out, err = cli("memory", "--model", "llama-3-8b", "--zero", "1", "--gpus", "8")
    assert code == 0, err
    assert "model states" in out and "optimizer" in out


# ---------------------------------------------------------------------------- the one fit rule
def test_fit_rule_keeps_five_percent_back():
    assert FIT_HEADROOM == 0.05
    assert usable_gib(80.0) == pytest.approx(76.0)
    assert fits_gpu(76.0 * GIB, 80.0) and not fits_gpu(76.01 * GIB, 80.0)


def test_memory_verdict_and_planner_use_the_same_rule():
    from scaling_planner.planner import defaults, layout

    assert defaults.MEMORY_HEADROOM == FIT_HEADROOM
    g = get_gpu("a100-80")
    for seq in (2048, 4096, 8192, 16384, 32768):
        est = estimate_memory(LLAMA8B, MemoryConfig(zero=3, gpus=8, seq_len=seq, recompute="full"), g)
        assert est.fits == layout.fits(est, g, defaults.MEMORY_HEADROOM) == fits_gpu(est.device, g.memory_gib)
        assert est.headroom_gib() == pytest.approx(est.usable_gib - est.device / GIB)


def test_memory_verdict_between_95_and_100_percent_does_not_fit():
    # find a seq whose device peak lies in (95%, 100%] of the GPU: the old rule said fits, the one rule says no
    c = MemoryConfig(method="qlora", framework="hf")
    sol = solve(LLAMA8B, c, RTX4090, "seq-len")
    for seq in range(sol.value + 1, sol.value + 5000, 50):
        est = estimate_memory(LLAMA8B, replace(c, seq_len=seq), RTX4090, suggest=False)
        if est.device / GIB <= RTX4090.memory_gib:
            assert est.fits is False
            return
    pytest.fail("no seq between 95% and 100%")


# ---------------------------------------------------------------------------- solver
@pytest.mark.parametrize("var, cfg", [
    ("seq-len", MemoryConfig(method="qlora", framework="hf")),
    ("seq-len", MemoryConfig(method="qlora", framework="hf", recompute="full")),
    ("micro-batch", MemoryConfig(method="lora", framework="hf", seq_len=256, recompute="full")),
    ("lora-rank", MemoryConfig(method="qlora", framework="hf", seq_len=1024)),
])
def test_solver_value_fits_and_next_does_not(var, cfg):
    sol = solve(LLAMA8B, cfg, RTX4090, var)
    assert sol.estimate.fits and sol.next_estimate is not None and sol.next_estimate.fits is False
    assert sol.next_value == sol.value + 1
    field = {"seq-len": "seq_len", "micro-batch": "micro_batch", "lora-rank": "lora_rank"}[var]
    assert getattr(sol.estimate.config, field) == sol.value
    d = sol.to_dict()
    assert set(d) >= {"variable", "value", "device_gib", "next_value", "next_device_gib"}
    assert d["device_gib"] <= usable_gib(RTX4090.memory_gib) < d["next_device_gib"]
    assert sol.evaluations < 64  # galloping + bisection, not a scan


def test_solver_agrees_with_a_scan():
    shape = ModelShape(vocab=1000, d_model=256, n_layers=4, n_heads=4)
    g = replace(RTX4090, memory_gib=1.2)
    c = MemoryConfig(seq_len=64, cuda_context_gib=0.0)
    sol = solve(shape, c, g, "micro-batch")
    fitting = [mb for mb in range(1, 3000) if estimate_memory(shape, replace(c, micro_batch=mb), g).fits]
    assert sol.value == max(fitting)


def test_solver_smallest_gpus():
    g = get_gpu("a100-80")
    sol = solve(LLAMA8B, MemoryConfig(zero=3, seq_len=2048), g, "gpus")
    assert sol.estimate.fits and sol.next_value == sol.value - 1 and sol.next_estimate.fits is False
    assert sol.estimate.config.gpus == sol.value


def test_solver_qlora_24gb_question_is_fast():
    t = time.perf_counter()
    sol = solve(LLAMA8B, MemoryConfig(method="qlora", framework="hf"), RTX4090, "seq-len")
    assert time.perf_counter() - t < 1.0
    assert 1000 < sol.value < 16384


@pytest.mark.parametrize("var, cfg, gpu, text", [
    ("seq-len", MemoryConfig(), None, "needs a GPU"),
    ("lora-rank", MemoryConfig(), RTX4090, "needs method lora or qlora"),
    ("seq-len", MemoryConfig(), RTX4090, "nothing fits: even seq_len 1"),
    ("gpus", MemoryConfig(zero=0), RTX4090, "no number of GPUs"),
    ("batch-size", MemoryConfig(), RTX4090, "solve must be one of"),
])
def test_solver_errors(var, cfg, gpu, text):
    with pytest.raises(ScalePlanError, match=text):
        solve(LLAMA8B, cfg, gpu, var)


def test_cli_solve_json_and_errors(cli):
    code, out, err = cli("memory", "--model", "llama-3-8b", "--method", "qlora", "--gpu", "rtx4090", "--solve",
                         "seq-len", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["solve"]["variable"] == "seq-len" and d["assumptions"]["seq_len"] == d["solve"]["value"]
    assert d["fits"] is True and d["device_gib"] == d["solve"]["device_gib"]
    code, out, err = cli("memory", "--model", "llama-3-8b", "--method", "qlora", "--gpu", "rtx4090", "--solve",
                         "seq-len")
    assert code == 0 and "largest seq-len that fits" in out
    code, out, err = cli("memory", "--model", "llama-3-8b", "--solve", "seq-len")
    assert code == 2 and "--gpu" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("memory", "--model", "llama-3-8b", "--gpu", "rtx4090", "--solve", "lora-rank")
    assert code == 2 and "--method lora or qlora" in err
    code, out, err = cli("memory", "--model", "llama-3-8b", "--gpu", "rtx4090", "--solve", "micro-batch")
    assert code == 2 and "nothing fits" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- --measure (no GPU needed)
from scaling_planner import measure  # noqa: E402


def test_measure_plan_maps_the_config():
    c = MemoryConfig(precision="amp", optimizer="paged-adamw-8bit", recompute="full", attention="flash",
                     method="qlora", lora_rank=8, lora_targets=("q", "v"), lora_dropout=0.1, seq_len=2048,
                     micro_batch=2, framework="hf")
    p = measure.measure_plan(LLAMA8B, c)
    assert p["precision"] == "amp" and p["optimizer"] == "paged-adamw-8bit" and p["recompute"] == "full"
    assert p["attention"] == "sdpa" and p["seq_len"] == 2048 and p["micro_batch"] == 2 and p["steps"] == 3
    assert p["method"] == "qlora" and p["lora"]["rank"] == 8 and p["lora"]["targets"] == ["q_proj", "v_proj"]
    assert p["lora"]["dropout"] == 0.1
    h = p["hf_config"]
    assert h["model_type"] == "llama" and h["hidden_size"] == LLAMA8B.d_model
    assert h["num_key_value_heads"] == LLAMA8B.n_kv_heads and h["vocab_size"] == LLAMA8B.vocab
    assert h["intermediate_size"] == LLAMA8B.ffn and h["num_hidden_layers"] == LLAMA8B.n_layers
    assert measure.measure_plan(LLAMA8B, MemoryConfig(attention="eager", precision="bf16"))["attention"] == "eager"
    given = {"model_type": "qwen2", "vocab_size": 10}
    assert measure.measure_plan(LLAMA8B, MemoryConfig(precision="fp32"), given)["hf_config"] is given
    json.dumps(p)  # goes to the runner on stdin


@pytest.mark.parametrize("cfg, text", [
    (MemoryConfig(gpus=2), "several GPUs"),
    (MemoryConfig(zero=1), "ZeRO stage 1"),
    (MemoryConfig(framework="megatron"), "framework megatron"),
    (MemoryConfig(precision="mixed"), "precision mixed"),
    (MemoryConfig(optimizer="lion"), "optimizer lion"),
    (MemoryConfig(recompute="selective"), "recompute selective"),
    (MemoryConfig(inference=True), "inference"),
    (MemoryConfig(framework="torchtune", optimizer_in_bwd=True), "optimizer_in_bwd"),
    (MemoryConfig(framework="torchtune", activation_offload=True, recompute="full"), "activation_offload"),
])
def test_measure_refuses_what_it_cannot_reproduce(cfg, text):
    with pytest.raises(ScalePlanError, match=text) as e:
        measure.measure_plan(LLAMA8B, cfg)
    assert "\n" not in str(e.value)


def test_measure_parses_the_runner_result():
    est = estimate_memory(LLAMA8B, MemoryConfig(method="qlora", framework="hf", seq_len=1024))
    line = json.dumps({"max_allocated_bytes": 10 * GIB, "max_reserved_bytes": 11 * GIB,
                       "device_used_bytes": 12 * GIB, "after_load_bytes": 5 * GIB, "params_total": 42,
                       "gpu": "NVIDIA H100", "steps": 3, "torch": "2.11.0", "transformers": "5.17.0",
                       "peft": "0.21.0", "bitsandbytes": "0.48"})
    m = measure.parse_result("some log line\n" + line + "\n")
    d = m.to_dict(est)
    assert d["allocated_gib"] == 10 and d["reserved_gib"] == 11 and d["device_gib"] == 12
    assert d["torch"] == "2.11.0" and d["transformers"] == "5.17.0" and d["peft"] == "0.21.0"
    assert d["error_pct"]["device"] == pytest.approx(100 * (est.device / (12 * GIB) - 1), abs=0.01)
    with pytest.raises(ScalePlanError, match="no CUDA GPU"):
        measure.parse_result(json.dumps({"error": "no CUDA GPU is visible"}))
    with pytest.raises(ScalePlanError, match="no result .*Segmentation"):
        measure.parse_result("", 139, "Traceback\nSegmentation fault")
    with pytest.raises(ScalePlanError, match="lacks a field"):
        measure.parse_result(json.dumps({"max_allocated_bytes": 1}))


def test_measure_without_torch_is_one_line(monkeypatch, cli):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ScalePlanError, match="needs PyTorch"):
        measure.run_measure({"x": 1})
    code, out, err = cli("memory", "--model", "llama-3-8b", "--method", "qlora", "--seq-len", "512", "--measure")
    assert code == 2 and "scaleplan[measure]" in err and len(err.strip().splitlines()) == 1


def test_measure_without_cuda_via_a_fake_python(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\ncat > /dev/null\n"
                    "echo '{\"error\": \"no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)\"}'\n"
                    "exit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ScalePlanError, match="no CUDA GPU"):
        measure.run_measure(measure.measure_plan(LLAMA8B, MemoryConfig(seq_len=128)), python=str(fake))


def test_runner_reports_missing_torch_or_cuda_as_json():
    # the real runner in a subprocess: here (no GPU; torch may or may not be installed) it prints one error line
    plan = measure.measure_plan(LLAMA8B, MemoryConfig(seq_len=128, precision="bf16"))
    proc = subprocess.run(measure.runner_command(), input=json.dumps(plan), capture_output=True, text=True,
                          timeout=120)
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" in d and ("PyTorch" in d["error"] or "CUDA" in d["error"]) and proc.returncode == 1


def test_measure_is_not_imported_at_cli_start_up():
    code = ("import sys; from scaling_planner.cli import app\n"
            "try:\n    app(['memory', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'scaling_planner.measure',"
            " 'scaling_planner.memory.solve') if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY:"


def test_cli_measure_json_and_terminal_with_a_stubbed_runner(monkeypatch, cli):
    fake = measure.Measured(allocated=10 * GIB, reserved=11 * GIB, device=12 * GIB, after_load=5 * GIB,
                            params_total=1, torch="2.11.0", transformers="5.17.0", gpu_name="NVIDIA H100",
                            extra={"steps": 3})
    seen = {}

    def run(plan, python=None, timeout=None):
        seen.update(plan)
        return fake

    monkeypatch.setattr(measure, "run_measure", run)
    args = ("memory", "--model", "llama-3-8b", "--method", "lora", "--framework", "hf", "--seq-len", "512",
            "--measure")
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    d = json.loads(out)["measured"]
    assert {"allocated_gib", "reserved_gib", "device_gib", "torch", "transformers"} <= set(d)
    assert d["device_gib"] == 12 and set(d["error_pct"]) == {"allocated", "reserved", "device"}
    assert seen["method"] == "lora" and seen["seq_len"] == 512
    code, out, err = cli(*args)
    assert code == 0 and "measured on NVIDIA H100" in out and "error" in out
    code, out, err = cli("memory", "--model", "llama-3-8b", "--zero", "1", "--gpus", "2", "--measure")
    assert code == 2 and "--gpus" in err and len(err.strip().splitlines()) == 1


def test_measure_refuses_lora_where_module_names_differ():
    # the runner adapts q_proj ... down_proj: GPT-2's c_attn / Conv1D would fail in PEFT or be left unadapted
    with pytest.raises(ScalePlanError, match="LoRA on this model family"):
        measure.measure_plan(LLAMA8B, MemoryConfig(method="lora"), {"model_type": "gpt2", "vocab_size": 50257})
    assert measure.measure_plan(LLAMA8B, MemoryConfig(method="lora"), {"model_type": "mistral"})["method"] == "lora"
