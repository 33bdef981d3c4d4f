"""A cheap discrete-time model of one vLLM engine and its HTTP front end (the demo's dynamics).

1-second ticks, per-request bookkeeping, no per-token loops: a load that rises and falls over a
10-minute cycle plus random bursts, an FCFS scheduler bounded by `max_num_seqs` and by a paged KV
cache, chunked prefill that slows decoding, recompute preemptions when the KV cache is full,
prefix-cache hits, client aborts and a small rate of HTTP errors. Histograms are fed from the same
events as the counters, so e.g. the e2e latency count equals the number of finished requests.

The engine knows nothing about metric names: it keeps counters, gauges and histograms keyed by a
role (`ttft`, `e2e`, ...), and a renderer (see `app.demo.exposition`) maps them onto the families
of the vLLM version it imitates, with that version's bucket boundaries.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping, Sequence

from app.demo.histogram import Histogram
from app.demo.profile import (
    BLOCK_SIZE,
    LOAD_CYCLE_S,
    MAX_MODEL_LEN,
    MAX_NUM_BATCHED_TOKENS,
    PREFILL_STEP_S,
    TICK_S,
    EngineProfile,
)

FINISHED_REASONS = ("stop", "length", "abort")
HANDLER_CHAT = "/v1/chat/completions"
HANDLER_COMPLETIONS = "/v1/completions"


class _Request:
    """One request's bookkeeping; times are simulated seconds."""

    __slots__ = (
        "abort_at", "arrival", "blocks", "cached", "cursor", "emitted", "first_token",
        "first_token_sched", "gen", "handler", "max_tokens", "n", "patience", "preempted",
        "prefill_left", "prompt", "sched", "stop_at",
    )  # fmt: skip

    def __init__(self, arrival: float, handler: str) -> None:
        self.arrival = arrival
        self.handler = handler
        self.prompt = 0
        self.cached = 0
        self.max_tokens = 0
        self.stop_at = 0  # Tokens after which the request ends (stop, length or client abort).
        self.abort_at = -1  # Token count at which the client disconnects, -1 if it never does.
        self.n = 1
        self.patience = 0.0  # Seconds the client waits in the queue before giving up.
        self.sched = -1.0  # Most recent SCHEDULED time.
        self.first_token = -1.0  # First token ever (for TTFT).
        self.first_token_sched = -1.0  # First token after the most recent SCHEDULED.
        self.gen = 0.0
        self.emitted = 0
        self.prefill_left = 0
        self.cursor = 0.0
        self.blocks = 0
        self.preempted = False


class DemoEngine:
    """Discrete-time model of one vLLM engine and its HTTP front end.

    `advance_to(t)` runs whole 1-second ticks up to simulated time `t`. State is public so that
    renderers for different vLLM versions can map it onto their metric names; histograms are keyed
    by role (see `app.demo.exposition.V1_BUCKETS`) and bucketed with the boundaries given at construction.
    """

    def __init__(
        self,
        rng: random.Random,
        buckets: Mapping[str, Sequence[float]],
        profile: EngineProfile | None = None,
    ) -> None:
        self.rng = rng
        self.profile = profile or EngineProfile()
        self.now = 0.0
        self.hist = {role: Histogram(bounds) for role, bounds in buckets.items()}
        self.waiting: deque[_Request] = deque()
        self.running: list[_Request] = []
        self.used_blocks = 0
        self._freed_blocks = 0  # Freed by requests finishing this tick, reusable from the next.
        # Counters.
        self.prompt_tokens = 0
        self.prompt_tokens_cached = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
        self.http: dict[tuple[str, str, str], int] = {}
        self.http_duration: dict[tuple[str, str], Histogram] = {}
        # Load model state.
        self._burst_until = -1.0
        self._burst_rate = 0.0
        self._next_burst = 60.0 + rng.uniform(0.0, 20.0)  # The demo opens mid-burst.
        self._abort_acc = rng.random()
        self._err4_acc = rng.random()
        self._err5_acc = rng.random()
        self._health_acc = rng.random()

    # --- public helpers -----------------------------------------------------------------------

    @property
    def kv_usage(self) -> float:
        """Fraction of KV-cache blocks in use."""
        return self.used_blocks / self.profile.num_gpu_blocks

    def advance_to(self, t: float) -> None:
        """Run whole ticks until simulated time reaches `t` (a fraction of a tick waits)."""
        while self.now + TICK_S <= t:
            self._tick(self.now, self.now + TICK_S)
            self.now += TICK_S

    def count_http(self, handler: str, method: str, status: str, duration: float) -> None:
        """Count one HTTP response the way prometheus-fastapi-instrumentator does."""
        key = (handler, method, status)
        self.http[key] = self.http.get(key, 0) + 1
        hist = self.http_duration.get((handler, method))
        if hist is None:
            hist = self.http_duration[(handler, method)] = Histogram(
                self.hist["http_duration"].bounds
            )
        hist.observe(duration)

    # --- load ---------------------------------------------------------------------------------

    def arrival_rate(self, t: float) -> float:
        """Requests per second at `t`: a 10-minute day/night cycle plus the current burst."""
        phase = 0.5 - 0.5 * math.cos(2.0 * math.pi * (t + 120.0) / LOAD_CYCLE_S)
        profile = self.profile
        rate = profile.base_rate + profile.peak_rate * phase
        if t < self._burst_until:
            rate += self._burst_rate
        return rate * profile.load_scale

    def _maybe_start_burst(self, t: float) -> None:
        """Bursts of 20-50 s add 2-4 requests/s, every 1.5-4 minutes."""
        if self.profile.bursts and t >= self._next_burst and t >= self._burst_until:
            self._burst_until = t + self.rng.uniform(20.0, 50.0)
            self._burst_rate = self.rng.uniform(2.0, 4.0)
            self._next_burst = self._burst_until + self.rng.uniform(60.0, 200.0)

    def _poisson(self, lam: float) -> int:
        if lam <= 0.0:
            return 0
        if lam > 30.0:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _new_request(self, arrival: float, handler: str) -> _Request:
        rng = self.rng
        req = _Request(arrival, handler)
        prompt = int(rng.lognormvariate(6.2, 0.8))  # Median ~500 tokens.
        req.prompt = min(max(prompt, 12), MAX_MODEL_LEN - 1024)
        if rng.random() < 0.65:  # Shares a system prompt / few-shot prefix with earlier requests.
            shared = rng.choice((256, 512, 768, 1536))
            req.cached = min(shared, req.prompt - 1) // BLOCK_SIZE * BLOCK_SIZE
        req.max_tokens = rng.choices((256, 512, 1024, 2048), weights=(3, 4, 2, 1))[0]
        wanted = max(1, int(rng.lognormvariate(5.1, 0.9)))  # Median ~165 tokens.
        req.stop_at = min(wanted, req.max_tokens)
        self._abort_acc += rng.uniform(0.0, 0.07)  # ~3.5 % of requests are aborted by the client.
        if self._abort_acc >= 1.0:
            self._abort_acc -= 1.0
            req.abort_at = rng.randint(1, max(1, req.stop_at - 1))
            req.stop_at = req.abort_at
        req.n = 2 if rng.random() < 0.04 else 1
        req.patience = rng.uniform(*self.profile.patience_s)
        return req

    # --- one tick -----------------------------------------------------------------------------

    def _tick(self, t0: float, t1: float) -> None:
        self._maybe_start_burst(t0)
        self._arrive(t0, t1)
        self._give_up(t0)
        self._schedule(t0)
        self._step(t0, t1)
        self._health_acc += TICK_S / 10.0  # The AQUA health probe.
        if self._health_acc >= 1.0:
            self._health_acc -= 1.0
            self.count_http("/health", "GET", "2xx", 0.001 + 0.002 * self.rng.random())

    def _arrive(self, t0: float, t1: float) -> None:
        rng = self.rng
        count = self._poisson(self.arrival_rate(t0) * (t1 - t0))
        for arrival in sorted(t0 + rng.random() * (t1 - t0) for _ in range(count)):
            handler = HANDLER_CHAT if rng.random() < 0.85 else HANDLER_COMPLETIONS
            self._err4_acc += rng.uniform(0.0, 0.02)  # ~1 % rejected by validation.
            if self._err4_acc >= 1.0:
                self._err4_acc -= 1.0
                self.count_http(handler, "POST", "4xx", 0.003 + 0.01 * rng.random())
                continue
            error_rate = 0.004 if self.kv_usage < 0.97 else 0.03
            self._err5_acc += rng.uniform(0.0, error_rate)
            if self._err5_acc >= 1.0:
                self._err5_acc -= 1.0
                self.count_http(handler, "POST", "5xx", 0.02 + 0.2 * rng.random())
                continue
            self.waiting.append(self._new_request(arrival, handler))

    def _give_up(self, t0: float) -> None:
        """Clients still without a first token after their patience disconnect (oldest first)."""
        waiting = self.waiting
        while (
            waiting
            and waiting[0].first_token < 0.0
            and t0 - waiting[0].arrival > waiting[0].patience
        ):
            req = waiting.popleft()
            req.stop_at = req.emitted
            self._finish(req, "abort", max(t0, req.arrival + req.patience))

    def _schedule(self, t0: float) -> None:
        rng = self.rng
        waiting, running = self.waiting, self.running
        total_blocks = self.profile.num_gpu_blocks
        free = total_blocks - self.used_blocks
        reserve = total_blocks * 3 // 200  # Headroom for the running requests' next tokens.
        while waiting and len(running) < self.profile.max_num_seqs:
            req = waiting[0]
            context = req.prompt + req.emitted
            need = -(-context // BLOCK_SIZE)
            if need > free - reserve:
                break  # Head-of-line blocking, as vLLM's FCFS policy does.
            waiting.popleft()
            free -= need
            req.blocks = need
            if req.arrival >= t0:  # Tokenisation and the engine round trip.
                req.sched = req.arrival + 0.004 + 0.008 * rng.random()
            else:
                req.sched = t0 + 0.5 * rng.random()
            if req.preempted:  # Recompute: some of its own blocks may still be cached.
                hits = int(context * rng.uniform(0.2, 0.8)) // BLOCK_SIZE * BLOCK_SIZE
                queried = context
            else:
                hits, queried = req.cached, req.prompt
            self.prefix_queries += queried
            self.prefix_hits += hits
            req.prefill_left = max(1, context - hits)
            req.cursor = req.sched
            req.first_token_sched = -1.0
            running.append(req)
        self.used_blocks = total_blocks - free

    def _step(self, t0: float, t1: float) -> None:
        running = self.running
        if not running:
            return
        rng = self.rng
        prefill_speed = self.profile.prefill_tokens_per_s
        # Chunked prefill, FCFS: each prefill starts once scheduled and once the previous one ends.
        prefill_end = t0
        prefill_tokens = 0
        n_decode = 0
        for req in running:
            if req.prefill_left == 0:
                n_decode += 1
                continue
            start = max(req.cursor, prefill_end)
            if start >= t1:
                continue
            end = start + req.prefill_left / prefill_speed + PREFILL_STEP_S
            if end <= t1:
                prefill_tokens += req.prefill_left
                req.prefill_left = 0
                prefill_end = end
                req.cursor = end  # The first token comes with the step completing the prefill.
            else:
                done = int((t1 - start) * prefill_speed)
                prefill_tokens += done
                req.prefill_left -= done
                prefill_end = t1
        busy = min(1.0, (prefill_end - t0) / (t1 - t0))
        kv_tokens = self.used_blocks * BLOCK_SIZE
        itl = (0.027 + 0.0003 * n_decode + 1.5e-7 * kv_tokens) * (1.0 + 1.2 * busy)
        itl *= rng.uniform(0.95, 1.08) * self.profile.itl_scale

        itl_hist = self.hist["itl"]
        decoded = 0
        survivors: list[_Request] = []
        for req in running:
            if req.prefill_left > 0:
                survivors.append(req)
                continue
            if req.first_token_sched < 0.0:  # Prefill completed during this tick: first token.
                req.first_token_sched = req.cursor
                if req.first_token < 0.0:
                    req.first_token = req.cursor
                    self.hist["ttft"].observe(req.cursor - req.arrival)
                    self.prompt_tokens += req.prompt
                    self.prompt_tokens_cached += req.cached
                    req.gen = req.emitted = 1
                    decoded += 1
                    if req.stop_at <= 1:
                        self._finish(req, "", req.cursor)
                        continue
            my_itl = itl * (0.9 + 0.2 * rng.random())
            start = max(req.cursor, t0)
            steps = (t1 - start) / my_itl
            remaining = req.stop_at - req.gen
            if steps >= remaining:
                new_tokens = req.stop_at - req.emitted
                req.gen = req.emitted = req.stop_at
                itl_hist.add(my_itl, new_tokens, my_itl * new_tokens)
                decoded += new_tokens
                self._finish(req, "", start + remaining * my_itl)
                continue
            req.gen += steps
            new_tokens = int(req.gen) - req.emitted
            req.emitted += new_tokens
            req.cursor = t1
            itl_hist.add(my_itl, new_tokens, my_itl * new_tokens)
            decoded += new_tokens
            grow = -(-(req.prompt + req.emitted) // BLOCK_SIZE) - req.blocks
            if grow > 0:
                req.blocks += grow
                self.used_blocks += grow
            survivors.append(req)
        self.running = survivors
        self.generation_tokens += decoded
        # KV cache exhausted by decode growth: preempt the newest requests (recompute mode).
        while self.used_blocks > self.profile.num_gpu_blocks and len(self.running) > 1:
            victim = self.running.pop()
            self.used_blocks -= victim.blocks
            victim.blocks = 0
            victim.preempted = True
            victim.prefill_left = 0
            self.preemptions += 1
            self.waiting.appendleft(victim)
        self.used_blocks -= self._freed_blocks
        self._freed_blocks = 0
        self._observe_iterations(prefill_tokens, decoded, itl)

    def _observe_iterations(self, prefill_tokens: int, decoded: int, itl: float) -> None:
        """Engine steps this tick: prefill-carrying steps and decode-only steps."""
        if prefill_tokens + decoded == 0:
            return
        steps = max(1, round(TICK_S / itl))
        prefill_steps = min(steps, -(-prefill_tokens // MAX_NUM_BATCHED_TOKENS))
        hist = self.hist["iteration_tokens"]
        if prefill_steps:
            total = prefill_tokens + decoded * prefill_steps / steps
            hist.add(total / prefill_steps, prefill_steps, total)
        if steps > prefill_steps:
            total = decoded * (steps - prefill_steps) / steps
            hist.add(total / (steps - prefill_steps), steps - prefill_steps, total)

    def _finish(self, req: _Request, reason: str, t: float) -> None:
        """Retire a request: free its KV blocks, count it and observe every request histogram."""
        if not reason:
            if req.stop_at == req.abort_at:
                reason = "abort"
            elif req.emitted >= req.max_tokens:
                reason = "length"
            else:
                reason = "stop"
        self._freed_blocks += req.blocks
        req.blocks = 0
        self.finished[reason] += 1
        hist = self.hist
        hist["e2e"].observe(t - req.arrival)
        if req.sched >= 0.0:
            first = req.first_token_sched if req.first_token_sched >= 0.0 else t
            hist["queue"].observe(req.sched - req.arrival)
            hist["inference"].observe(t - req.sched)
            hist["prefill"].observe(first - req.sched)
            hist["decode"].observe(t - first)
            if req.emitted > 1:
                hist["tpot"].observe((t - first) / (req.emitted - 1))
        else:  # Gave up in the queue before ever being scheduled.
            for role in ("inference", "prefill", "decode"):
                hist[role].observe(0.0)
            hist["queue"].observe(t - req.arrival)
        hist["prompt_tokens"].observe(req.prompt)
        hist["generation_tokens"].observe(req.emitted)
        hist["max_num_generation_tokens"].observe(req.emitted)
        hist["params_n"].observe(req.n)
        hist["params_max_tokens"].observe(req.max_tokens)
        hist["prefill_kv_computed_tokens"].observe(req.prompt - req.cached)
        self.count_http(req.handler, "POST", "2xx", t - req.arrival)
