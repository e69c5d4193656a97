"""Model shapes (exact parameter counts against published model cards) and the GPU catalogue."""

from pathlib import Path

import pytest

from scaling_planner.cli import resolve_shape
from scaling_planner.errors import ScalePlanError
from scaling_planner.hardware import get_gpu, list_gpus
from scaling_planner.io.hf_config import from_hf_config
from scaling_planner.io.prices import load_prices
from scaling_planner.model import ModelShape, get_preset, shape_for_params

CFG = Path(__file__).parent / "fixtures" / "hf_configs"

# Total parameter counts as printed by Hugging Face transformers (model.num_parameters()) for each checkpoint;
# the first three are also in memory.md §9.
COUNTS = {
    "llama2_7b.json": 6_738_415_616, "llama3_8b.json": 8_030_261_248, "llama32_3b.json": 3_212_749_824,
    "gpt2.json": 124_439_808, "mixtral.json": 46_702_792_704, "opt_125m.json": 125_239_296,
    "pythia_160m.json": 162_322_944, "falcon_7b.json": 6_921_720_704, "bloom_560m.json": 559_214_592,
    "qwen2_05b.json": 494_032_768, "phi3_mini.json": 3_821_079_552, "gemma_7b.json": 8_537_680_896,
    "mistral_7b.json": 7_241_732_096,
}


@pytest.mark.parametrize("fname,count", COUNTS.items())
def test_hf_config_param_counts_exact(fname, count):
    assert from_hf_config(CFG / fname).params_total == count


@pytest.mark.parametrize("name,count", [("llama-2-7b", 6_738_415_616), ("llama-3-8b", 8_030_261_248),
                                        ("llama-3.2-3b", 3_212_749_824), ("gpt2", 124_439_808)])
def test_presets_exact(name, count):
    assert get_preset(name).params_total == count


def test_mixtral_active_params():
    # Mistral AI: Mixtral 8x7B has 46.7B total and 12.9B active parameters per token (top-2 of 8 experts)
    s = from_hf_config(CFG / "mixtral.json")
    assert s.params_active == pytest.approx(12.9e9, rel=0.005)


def test_qwen_moe_shared_experts():
    # Qwen/Qwen1.5-MoE-A2.7B config.json (model card: 14.3B parameters in total, 2.7B activated): 60 routed experts
    # of 1,408, top-4, and a shared expert of 5,632 = 4 shared experts of the routed width, always active
    s = from_hf_config(CFG / "qwen15_moe_a27b.json")
    assert (s.n_experts, s.top_k, s.shared_experts, s.ffn) == (60, 4, 4, 1408)
    assert s.params_total == pytest.approx(14.3e9, rel=0.005)
    assert s.params_active == pytest.approx(2.7e9, rel=0.01)
    assert s.mlps_per_token == 8


def test_non_embedding_and_flops():
    s = get_preset("llama-3-8b")
    assert s.params_non_embedding == s.params_total - 2 * 128256 * 4096
    # PaLM App. B: 6N + 12·L·H·Q·T; planning.md §1: attention adds ~27% for Llama-3-8B at 8K
    assert s.flops_per_token(8192) / s.flops_per_token() - 1 == pytest.approx(0.27, abs=0.01)


def test_shape_for_params_rule():
    for n in (1e8, 1e9, 7e9, 3e10, 7e10):
        s = shape_for_params(n)
        assert abs(s.params_total / n - 1) < 0.05
        assert s.head_dim == 128 and s.d_model % 128 == 0
    s = shape_for_params(3e10, tp=8, pp=4)
    assert s.n_heads % 8 == 0 and s.n_layers % 4 == 0


@pytest.mark.parametrize("kw,match", [
    (dict(vocab=32000, d_model=4096, n_layers=32, n_heads=30), "must divide d_model"),
    (dict(vocab=32000, d_model=0, n_layers=32, n_heads=32), "d_model must be a positive integer"),
    (dict(vocab=32000, d_model=4096, n_layers=-1, n_heads=32), "n_layers must be a positive integer"),
    (dict(vocab=32000, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=5), "kv heads"),
])
def test_bad_shapes(kw, match):
    with pytest.raises(ScalePlanError, match=match):
        ModelShape(**kw)


def test_bad_configs(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "t5", "d_model": 512}')
    with pytest.raises(ScalePlanError, match="not supported; supported: llama"):
        from_hf_config(p)
    p.write_text("{broken")
    with pytest.raises(ScalePlanError, match="not valid JSON"):
        from_hf_config(p)
    p.write_text('{"model_type": "llama", "hidden_size": 4096}')
    with pytest.raises(ScalePlanError, match="missing field 'num_attention_heads'"):
        from_hf_config(p)
    with pytest.raises(ScalePlanError, match="Did you mean 'llama-3-8b'"):
        get_preset("llama3-8b")
    with pytest.raises(ScalePlanError, match="one of --model"):
        resolve_shape(model="gpt2", params=1e9)


def test_gpu_catalogue():
    # NVIDIA datasheets (dense BF16): A100 312, H100 SXM 989.5 TFLOP/s; driver-reported H100 memory 81,559 MiB
    assert get_gpu("a100-80").peak_tflops("bf16") == 312
    assert get_gpu("H100").peak_tflops("bf16") == 989.5
    assert get_gpu("h100").memory_gib == pytest.approx(81559 / 1024)
    assert get_gpu("v100").peak_tflops("bf16") == 125  # no bf16: falls back to fp16 tensor cores
    required = ["a100-40", "a100-80", "h100", "h100-pcie", "h200", "b200", "gh200", "l4", "l40s", "a10g", "t4",
                "v100-16", "v100-32", "rtx3090", "rtx4090", "rtx6000-ada", "mi250x", "mi300x", "tpu-v5e", "tpu-v5p"]
    keys = {g.key for g in list_gpus()}
    assert set(required) <= keys
    with pytest.raises(ScalePlanError, match="Did you mean 'h100'"):
        get_gpu("h1000")


def test_price_overrides(tmp_path):
    p = tmp_path / "prices.json"
    p.write_text('{"h100": 2.49}')
    g = get_gpu("h100-sxm", load_prices(p))
    assert g.price_usd_per_hour == 2.49 and g.price_source == "user prices file"
    p.write_text('{"h100": -1}')
    with pytest.raises(ScalePlanError, match=">= 0"):
        load_prices(p)


# ---- link bandwidths and the newer GPUs (docs/planning.md §5.3) --------------------------------------------------
def test_every_row_says_where_its_links_come_from():
    for g in list_gpus():
        assert g.bandwidth_source, g.key  # a datasheet figure, or "assumed" in words
        assert g.intra_node_gb_s > 0 and g.inter_node_gb_s > 0
        assert g.intra_node_latency_us > 0 and g.inter_node_latency_us > 0
    # NCCL src/graph/tuning.cc @ 5067397 (ring, Simple protocol hardware latencies): NVLink 3.4, PCIe 5.7, network
    # 14.0 us per step; GPUs without NVLink (PCIe cards) take the PCIe figure
    assert get_gpu("h100").intra_node_latency_us == 3.4 and get_gpu("h100").inter_node_latency_us == 14.0
    assert get_gpu("l4").intra_node_latency_us == 5.7 and get_gpu("h100-pcie").intra_node_latency_us == 5.7
    assert get_gpu("tpu-v5p").intra_node_latency_us == 3.4  # blank cell: the documented NVLink default


def test_h800_reduced_nvlink():
    # H800: NVLink 400 GB/s total (H800 product brief; Zhao et al. 2025, arXiv 2505.09343) vs H100's 900 GB/s (H100
    # datasheet); one 400 Gb/s InfiniBand NIC per GPU = 50 GB/s (DeepSeek-V3 report, arXiv 2412.19437 §3.2.2)
    h800, h100 = get_gpu("h800"), get_gpu("H100")
    assert h800.intra_node_gb_s == 400 / 2 and h100.intra_node_gb_s == 900 / 2
    assert h800.inter_node_gb_s == 400 / 8 == h100.inter_node_gb_s
    # the same GH100 tensor cores and HBM3 as H100 SXM: dense BF16 989.5, FP8 1,979 TFLOP/s, 3.35 TB/s
    assert (h800.peak_tflops("bf16"), h800.peak_tflops("fp8"), h800.mem_bw_gb_s) == (989.5, 1979, 3350)
    assert get_gpu("h800-sxm") is h800


def test_blackwell_rows():
    # HGX B200 datasheet (8 GPUs): NVLink 5 1.8 TB/s per GPU, 1.44 TB HBM3e, 64 TB/s; BF16 36 PF / FP8 72 PF with
    # sparsity -> per GPU dense 2.25 / 4.5 PFLOP/s
    b = get_gpu("b200")
    assert (b.intra_node_gb_s, b.memory_gb_marketed, b.mem_bw_gb_s) == (1800 / 2, 1440 / 8, 64000 / 8)
    assert (b.peak_tflops("bf16"), b.peak_tflops("fp8")) == (36000 / 8 / 2, 72000 / 8 / 2)
    # GB200 NVL72 page (72 GPUs, sparse figures): BF16 360 PF, FP8 720 PF, 13.4 TB HBM3e at 576 TB/s, NVLink 130 TB/s;
    # one NVLink domain of 72 GPUs
    g = get_gpu("gb200-nvl72")
    assert g.peak_tflops("bf16") == 360000 / 72 / 2 and g.peak_tflops("fp8") == 720000 / 72 / 2
    assert g.memory_gb_marketed == pytest.approx(13400 / 72, abs=0.2) and g.mem_bw_gb_s == 576000 / 72
    assert g.intra_node_gb_s == pytest.approx(130000 / 72 / 2, rel=0.01) and g.gpus_per_node == 72


def test_gpus_json_adds_link_columns(cli):
    import json

    code, out, err = cli("gpus", "--json")
    assert code == 0, err
    rows = {r["key"]: r for r in json.loads(out)}
    old = {"key", "name", "memory_gib", "bf16_tflops", "fp16_tflops", "fp8_tflops", "mem_bw_gb_s", "gpus_per_node",
           "price_usd_per_hour", "price_source"}
    assert old <= set(rows["h800"])  # existing keys stay
    assert rows["h800"]["intra_node_gb_s"] == 200 and rows["gb200"]["inter_node_gb_s"] == 50
    assert "DeepSeek-V3" in rows["h800"]["bandwidth_source"]
