"""The simulated engine's configuration: the fixed constants of the modelled deployment and the
`EngineProfile` that makes one demo deployment unlike another (its load and its capacity)."""

from __future__ import annotations

from dataclasses import dataclass

# --- Engine configuration: a Llama-3.1-8B on a 24 GB GPU (A10-class) with --max-model-len 8192. ---
MAX_MODEL_LEN = 8192
BLOCK_SIZE = 16
NUM_GPU_BLOCKS = 2250  # 36 000 tokens of KV cache at 128 KiB/token.
MAX_NUM_SEQS = 64
MAX_NUM_BATCHED_TOKENS = 2048  # Chunked-prefill budget per engine step.
PREFILL_TOKENS_PER_S = 9000.0
PREFILL_STEP_S = 0.02  # The engine step that completes a prefill and samples the first token.
TICK_S = 1.0
WARMUP_S = 90  # Simulated history before the first render, so every panel has data at once.
MAX_CATCH_UP_S = 120  # After a longer gap the simulation resumes instead of replaying it.
LOAD_CYCLE_S = 600.0


@dataclass(frozen=True)
class EngineProfile:
    """What makes one simulated deployment unlike another: its load and its capacity.

    The defaults are the original demo (a busy, healthy Llama-3.1-8B on an A10); the demo fleet
    (`app.demo.fleet`) varies these numbers rather than forking the simulation.
    """

    load_scale: float = 1.0  # Multiplies the whole arrival rate (cycle and bursts).
    base_rate: float = 0.3  # Requests/s at the quietest point of the load cycle.
    peak_rate: float = 1.5  # Requests/s added at the busiest point.
    bursts: bool = True
    max_num_seqs: int = MAX_NUM_SEQS
    num_gpu_blocks: int = NUM_GPU_BLOCKS
    prefill_tokens_per_s: float = PREFILL_TOKENS_PER_S
    itl_scale: float = 1.0  # Multiplies the decode step time (a slower GPU or a larger model).
    patience_s: tuple[float, float] = (25.0, 90.0)  # How long clients wait in the queue.
