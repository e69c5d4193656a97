"""Per-GPU training (and inference) memory at the peak, as a breakdown (docs/memory.md).

One idea per module:

- :mod:`.config` — MemoryConfig, its choices and validation;
- :mod:`.states` — bytes per parameter (precisions, optimizers, NF4 / 8-bit constants) and the ZeRO sharding rule;
- :mod:`.profiles` — the software-stack facts (generic, hf, torchtune, megatron, deepspeed), each with its source;
- :mod:`.activations` — one function per saved activation tensor group (Korthikanti et al. 2022, generalised);
- :mod:`.training` — a rank's training memory step by step: parameters, states, offload, buffers, phases, peak;
- :mod:`.inference` — weights + KV cache;
- :mod:`.result` — MemoryEstimate and the peak kinds (allocated, reserved, device);
- :mod:`.estimate` — estimate_memory, the entry point;
- :mod:`.whatif` — suggestions and max_micro_batch.

Units: bytes internally, GiB (2**30) in reports.
"""

from .activations import activation_terms, layer_activation_bytes
from .config import METHODS, PEAK_KINDS, RECOMPUTE, MemoryConfig, validate
from .estimate import estimate_memory
from .inference import kv_cache_bytes
from .profiles import FRAMEWORKS, PROFILES, Profile, profile
from .result import MemoryEstimate
from .states import BNB_8BIT_STATE, NF4_DQ_BYTES, OPTIMIZERS, PRECISIONS
from .training import lora_params_per_layer
from .whatif import max_micro_batch

__all__ = ["MemoryConfig", "MemoryEstimate", "estimate_memory", "PROFILES", "Profile", "profile", "kv_cache_bytes",
           "lora_params_per_layer", "max_micro_batch", "activation_terms", "layer_activation_bytes", "validate",
           "PRECISIONS", "OPTIMIZERS", "NF4_DQ_BYTES", "BNB_8BIT_STATE", "FRAMEWORKS", "METHODS", "PEAK_KINDS",
           "RECOMPUTE"]
