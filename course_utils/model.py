"""TinyGPT: a decoder-only transformer in numpy, with a hand-written backward pass.

The same model serves every stage of the course: the pretrained and SFT policy (chapters
1-2), the trunk of the reward model (chapter 3, a scalar head on ``.hidden``) and the PPO
policy with its value head (chapter 5).

Architecture (GPT-2, Radford et al. 2019, pre-LayerNorm)::

    x⁰   = W_te[tokens] + W_pe[0..T-1]
    for each block ℓ:
        x  = x + Attn(LN₁(x))          causal multi-head self-attention
        x  = x + MLP(LN₂(x))           Linear → GELU → Linear
    h    = LN_f(x)                      ``model.hidden``
    z    = h W_teᵀ  (tied)  or  h W_lm  logits over the vocabulary

Symbols
-------
=============  ==============================================================
B, T           batch size, sequence length (T ≤ max_len)
N              B·T, the rows every linear layer works on
V, D, F        vocabulary size, model width d_model, MLP width d_ff (4·D)
L, H, d_h      number of blocks, heads per block, head width D / H
W_te, W_pe     token embedding (V, D) and position embedding (max_len, D)
LN(x)          (x - μ) / √(σ² + 1e-5) · g + b over the D features of a row
Q, K, V        queries, keys, values (B, H, T, d_h); one fused projection [Q|K|V] = x W_qkv
S, P           scores Q Kᵀ / √d_h with -∞ above the diagonal, P = softmax(S) row-wise
GELU(u)        ½ u (1 + tanh(√(2/π)(u + 0.044715 u³)))  (tanh approximation)
h              final hidden states LN_f(x), shape (B, T, D)
z              logits (B, T, V)
dX             ∂loss/∂X, the gradient flowing back into X
=============  ==============================================================

The layers and their backward passes are in ``layers.py``, decoding (temperature, top-k,
top-p) in ``decoding.py``; this module is the architecture that composes them.

Conventions: every linear layer inside a block has a bias (GPT-2); the LM head has none,
so the tied and the untied head have the same form, z = h W. Parameter keys read like the
architecture: ``wte``, ``wpe``, ``h0.ln1.g``, ``h0.attn.w_qkv``, ``h0.mlp.w_fc``, ...,
``ln_f.g``, and ``lm_head`` (D, V) when the head is untied.

Speed (measured on a 2-core CPU with OpenBLAS; see ``benchmarks/bench_model.py``):

* every linear layer works on N = B·T rows at once, and Q, K, V come from one fused
  product, so BLAS gets large matrices;
* attention scores are a batched ``matmul`` (``Q @ Kᵀ``); ``einsum`` without
  ``optimize=True`` is an order of magnitude slower;
* means over the short feature axis (LayerNorm) and row sums are matrix-vector products
  with a ones vector, several times faster than ``x.mean(-1)``;
* a softmax skips its max-shift when exp provably cannot overflow (two passes fewer over
  the largest arrays, see ``softmax_rows`` and ``losses.cross_entropy``);
* float32 takes about half the time of float64;
* large temporaries are freed and re-allocated every step, and glibc would hand that
  memory back to the kernel and fault it in again (about 2,900 page faults and 8 ms of
  system time per training step of the chapter model). The training loops therefore call
  ``runtime.configure()`` on entry, which raises glibc's mmap and trim thresholds once with
  ``mallopt`` and removes those faults (importing this module changes nothing). Skipped
  when you set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` yourself, and on
  systems without glibc; code that runs its own loop of forward and backward passes calls
  ``runtime.configure()`` first;
* not done: running numpy's one-core elementwise work in threads. With OpenBLAS it gains
  nothing, because after each matrix product OpenBLAS's worker threads keep spinning on
  the other cores for about 0.1 s.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .decoding import Generation, filter_logits, sample_next_token  # noqa: F401  (filter_logits: re-exported)
from .layers import (
    attention,
    attention_backward,
    gelu,
    gelu_backward,
    layer_norm,
    layer_norm_backward,
    linear,
    linear_backward,
    scatter_add_rows,
)

__all__ = ["GPTConfig", "TinyGPT", "Generation", "copy_into", "filter_logits", "sample_next_token"]


# ----------------------------------------------------------------------------- configuration


@dataclass
class GPTConfig:
    """Shape and numerics of a TinyGPT.

    ``d_ff`` defaults to 4·d_model. ``dtype`` is "float32" (fast, the default) or
    "float64" (for finite-difference gradient checks). ``init_std`` is the standard
    deviation of the normal initialisation (GPT-2: 0.02).
    """

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 128
    d_ff: int | None = None
    tie_weights: bool = True
    dtype: str = "float32"
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_len", "d_ff"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @property
    def d_head(self) -> int:
        """d_h = D / H."""
        return self.d_model // self.n_heads


class TinyGPT:
    """A GPT-2-style decoder in numpy with ``forward``, ``backward`` and ``generate``.

    ``params`` maps readable names to arrays (updated in place by the optimiser); the
    initialisation is N(0, init_std²) for matrices and embeddings, N(0, (init_std/√(2L))²)
    for the two residual projections of each block (GPT-2), zero biases, unit LN gains.
    The same seed gives the same weights (drawn in float64, then cast to ``dtype``).
    """

    def __init__(self, config: GPTConfig, seed: int = 0) -> None:
        self._setup(config)
        self.params: dict[str, np.ndarray] = self._init_params(seed)

    def _setup(self, config: GPTConfig) -> None:
        self.config = config
        self.dtype = np.dtype(config.dtype)
        self.hidden: np.ndarray | None = None       # h = LN_f(x) of the last forward, (B, T, D)
        self._cache: dict | None = None
        T = config.max_len
        self._causal_bias = np.triu(np.full((T, T), -np.inf, dtype=self.dtype), k=1)   # 0 on and below the diagonal

    # --------------------------------------------------------------- parameters

    def _init_params(self, seed: int) -> dict[str, np.ndarray]:
        c = self.config
        rng = np.random.default_rng(seed)
        D, F, std = c.d_model, c.d_ff, c.init_std
        resid_std = std / math.sqrt(2 * c.n_layers)

        def normal(shape, s=std):
            return (rng.standard_normal(shape) * s).astype(self.dtype)

        def zeros(n):
            return np.zeros(n, dtype=self.dtype)

        def ones(n):
            return np.ones(n, dtype=self.dtype)

        p = {"wte": normal((c.vocab_size, D)), "wpe": normal((c.max_len, D))}
        for i in range(c.n_layers):
            p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"] = ones(D), zeros(D)
            p[f"h{i}.attn.w_qkv"], p[f"h{i}.attn.b_qkv"] = normal((D, 3 * D)), zeros(3 * D)
            p[f"h{i}.attn.w_proj"], p[f"h{i}.attn.b_proj"] = normal((D, D), resid_std), zeros(D)
            p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"] = ones(D), zeros(D)
            p[f"h{i}.mlp.w_fc"], p[f"h{i}.mlp.b_fc"] = normal((D, F)), zeros(F)
            p[f"h{i}.mlp.w_proj"], p[f"h{i}.mlp.b_proj"] = normal((F, D), resid_std), zeros(D)
        p["ln_f.g"], p["ln_f.b"] = ones(D), zeros(D)
        if not c.tie_weights:
            p["lm_head"] = normal((D, c.vocab_size))
        return p

    @property
    def n_params(self) -> int:
        """Number of trainable numbers (a tied head is counted once, as ``wte``)."""
        return int(sum(a.size for a in self.params.values()))

    def _head_weight(self) -> np.ndarray:
        """W of z = h W: W_teᵀ (tied) or ``lm_head`` (D, V)."""
        return self.params["wte"].T if self.config.tie_weights else self.params["lm_head"]

    def _check_tokens(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None, :]
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens must be integer ids of shape (B, T), got {tokens.dtype} {tokens.shape}")
        if tokens.shape[1] > self.config.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len={self.config.max_len}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size})")
        return tokens

    # --------------------------------------------------------------- forward

    def forward(self, tokens: np.ndarray) -> np.ndarray:
        """Logits z (B, T, V) for integer ``tokens`` (B, T) (a 1-D sequence is read as B = 1).

        Keeps what ``backward`` needs, and sets ``self.hidden`` = LN_f(x), shape (B, T, D).
        """
        h = self.forward_hidden(tokens)
        B, T, D = h.shape
        return (h.reshape(B * T, D) @ self._head_weight()).reshape(B, T, self.config.vocab_size)

    def forward_hidden(self, tokens: np.ndarray) -> np.ndarray:
        """The final hidden states h = LN_f(x) (B, T, D) without the LM head.

        For a head on ``hidden`` only (reward model, value head): it skips the (B, T, V)
        logits, and ``backward(None, dhidden)`` works after it as after ``forward``.
        """
        tokens = self._check_tokens(tokens)
        c, p = self.config, self.params
        B, T = tokens.shape
        x = p["wte"][tokens.reshape(-1)]                                   # (N, D)
        x.reshape(B, T, c.d_model)[...] += p["wpe"][:T]
        blocks = []
        for i in range(c.n_layers):
            x, cache = self._block_forward(i, x, B, T)
            blocks.append(cache)
        h, ln_f = layer_norm(x, p["ln_f.g"], p["ln_f.b"])
        self.hidden = h.reshape(B, T, c.d_model)
        self._cache = {"tokens": tokens, "blocks": blocks, "ln_f": ln_f, "h": h}
        return self.hidden

    def _block_forward(self, i: int, x: np.ndarray, B: int, T: int):
        """x ← x + Attn(LN₁(x));  x ← x + MLP(LN₂(x)) on rows x (N, D)."""
        p, H, dh = self.params, self.config.n_heads, self.config.d_head
        pre = f"h{i}."
        # causal self-attention: one fused projection to [Q | K | V]
        a_in, ln1 = layer_norm(x, p[pre + "ln1.g"], p[pre + "ln1.b"])
        qkv = linear(a_in, p[pre + "attn.w_qkv"], p[pre + "attn.b_qkv"])          # (N, 3D)
        q, k, v = qkv.reshape(B, T, 3, H, dh).transpose(2, 0, 3, 1, 4)            # (B, H, T, d_h)
        y, att = attention(q, k, v, self._causal_bias[:T, :T])
        y = y.transpose(0, 2, 1, 3).reshape(B * T, H * dh)                        # heads side by side
        x = x + linear(y, p[pre + "attn.w_proj"], p[pre + "attn.b_proj"])
        # MLP
        m_in, ln2 = layer_norm(x, p[pre + "ln2.g"], p[pre + "ln2.b"])
        u = linear(m_in, p[pre + "mlp.w_fc"], p[pre + "mlp.b_fc"])                # (N, F)
        g, gl = gelu(u)
        x = x + linear(g, p[pre + "mlp.w_proj"], p[pre + "mlp.b_proj"])
        return x, (ln1, a_in, att, y, ln2, m_in, gl, g)

    # --------------------------------------------------------------- backward

    def backward(self, dlogits: np.ndarray | None, dhidden: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Gradients of the loss with respect to every parameter, keyed like ``params``.

        Args:
            dlogits: ∂loss/∂z (B, T, V) from the last ``forward``, or None when only a head on
                ``hidden`` is trained (reward model): then the LM head gets no gradient.
            dhidden: an extra ∂loss/∂h (B, T, D) on the final hidden states, from a scalar
                reward head or a value head sitting on ``self.hidden``.

        Returns:
            New arrays (safe to keep or accumulate); every key of ``params`` is present.
        """
        if self._cache is None:
            raise RuntimeError("call forward() before backward()")
        if dlogits is None and dhidden is None:
            raise ValueError("backward needs dlogits, dhidden or both")
        c, p, cache = self.config, self.params, self._cache
        tokens, h = cache["tokens"], cache["h"]
        B, T = tokens.shape
        N, D = B * T, c.d_model
        grads: dict[str, np.ndarray] = {}

        # LM head, z = h W:  dh = dz Wᵀ,  dW = hᵀ dz  (tied: W = W_teᵀ, so dW_te = dzᵀ h)
        dh = np.zeros((N, D), dtype=self.dtype)
        if dlogits is not None:
            if np.shape(dlogits) != (B, T, c.vocab_size):
                raise ValueError(f"dlogits has shape {np.shape(dlogits)}, expected {(B, T, c.vocab_size)}")
            dz = np.asarray(dlogits, dtype=self.dtype).reshape(N, c.vocab_size)
            if c.tie_weights:
                dh = dz @ p["wte"]
                grads["wte"] = dz.T @ h
            else:
                dh = dz @ p["lm_head"].T
                grads["lm_head"] = h.T @ dz
        elif not c.tie_weights:
            grads["lm_head"] = np.zeros_like(p["lm_head"])
        if dhidden is not None:
            if np.shape(dhidden) != (B, T, D):
                raise ValueError(f"dhidden has shape {np.shape(dhidden)}, expected {(B, T, D)}")
            dh += np.asarray(dhidden, dtype=self.dtype).reshape(N, D)

        dx, grads["ln_f.g"], grads["ln_f.b"] = layer_norm_backward(dh, cache["ln_f"])
        for i in reversed(range(c.n_layers)):
            dx = self._block_backward(i, dx, cache["blocks"][i], B, T, grads)

        # embeddings: x⁰ = W_te[tokens] + W_pe[:T]
        dwte = grads.get("wte")
        if dwte is None:
            dwte = np.zeros_like(p["wte"])
        scatter_add_rows(dwte, tokens.reshape(-1), dx)
        grads["wte"] = dwte
        dwpe = np.zeros_like(p["wpe"])
        dwpe[:T] = (np.ones(B, dtype=self.dtype) @ dx.reshape(B, T * D)).reshape(T, D)   # Σ over the batch
        grads["wpe"] = dwpe
        return {k: grads[k] for k in p}

    def _block_backward(self, i: int, dx: np.ndarray, cache, B: int, T: int, grads: dict) -> np.ndarray:
        """Backward through one block; writes the block's parameter gradients into ``grads``."""
        p, H, dh_ = self.params, self.config.n_heads, self.config.d_head
        pre = f"h{i}."
        ln1, a_in, att, y, ln2, m_in, gl, g = cache
        # MLP branch: x = x + W_proj GELU(W_fc LN₂(x))
        dg, grads[pre + "mlp.w_proj"], grads[pre + "mlp.b_proj"] = linear_backward(dx, g, p[pre + "mlp.w_proj"])
        du = gelu_backward(dg, gl)
        dm, grads[pre + "mlp.w_fc"], grads[pre + "mlp.b_fc"] = linear_backward(du, m_in, p[pre + "mlp.w_fc"])
        dm, grads[pre + "ln2.g"], grads[pre + "ln2.b"] = layer_norm_backward(dm, ln2)
        dx = dx + dm
        # attention branch: x = x + W_proj Attn(LN₁(x))
        dy, grads[pre + "attn.w_proj"], grads[pre + "attn.b_proj"] = linear_backward(dx, y, p[pre + "attn.w_proj"])
        dy = dy.reshape(B, T, H, dh_).transpose(0, 2, 1, 3)
        dq, dk, dv = attention_backward(dy, att)
        dqkv = np.empty((B, T, 3, H, dh_), dtype=self.dtype)
        for j, d in enumerate((dq, dk, dv)):
            dqkv[:, :, j] = d.transpose(0, 2, 1, 3)
        dqkv = dqkv.reshape(B * T, 3 * H * dh_)
        da, grads[pre + "attn.w_qkv"], grads[pre + "attn.b_qkv"] = linear_backward(dqkv, a_in, p[pre + "attn.w_qkv"])
        da, grads[pre + "ln1.g"], grads[pre + "ln1.b"] = layer_norm_backward(da, ln1)
        return dx + da


    # --------------------------------------------------------------- saving and loading

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter array, keyed like ``params``."""
        return {name: a.copy() for name, a in self.params.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``state`` into ``params`` in place (an optimiser holding the arrays keeps working).

        The keys and shapes must match exactly; values are cast to the model's dtype.
        """
        copy_into(self.params, state)

    def copy(self) -> "TinyGPT":
        """An independent model with the same config and a copy of the weights (e.g. the frozen
        SFT reference of PPO)."""
        other = object.__new__(TinyGPT)
        other._setup(GPTConfig(**asdict(self.config)))
        other.params = self.state_dict()
        return other

    def save(self, path: str | Path, storage: str | None = None) -> None:
        """Write the config (as JSON) and every parameter to one ``.npz`` file at exactly ``path``.

        ``storage="float16"`` halves the file (the course's committed checkpoints); ``load``
        casts back to the model's dtype. Rounding a float32 weight to float16 changes it by at
        most 1 part in 2,048, far below what changes an answer.
        """
        arrays = {f"param:{name}": (a.astype(storage) if storage else a) for name, a in self.params.items()}
        with open(path, "wb") as f:            # a file object: numpy does not append ".npz"
            np.savez(f, __format__=np.array(SAVE_FORMAT), __config__=np.array(json.dumps(asdict(self.config))),
                     **arrays)

    @classmethod
    def load(cls, path: str | Path, dtype: str | None = None) -> "TinyGPT":
        """Rebuild a model written by ``save``; ``dtype`` ("float32" or "float64") overrides the saved one.

        Loading a float32 checkpoint as float64 gives inference whose results do not depend on
        the CPU or BLAS kernel at any printed precision (the notebooks evaluate that way).
        """
        with np.load(path, allow_pickle=False) as data:
            if "__config__" not in data.files:
                raise ValueError(f"{path} is not a TinyGPT checkpoint (no config inside)")
            model = object.__new__(cls)
            config = json.loads(str(data["__config__"]))
            if dtype is not None:
                config["dtype"] = dtype
            model._setup(GPTConfig(**config))
            model.params = {name[len("param:"):]: data[name].astype(model.dtype)
                            for name in data.files if name.startswith("param:")}
        expected = cls(model.config).params.keys()  # same keys as a fresh model
        if model.params.keys() != expected:
            raise ValueError(f"{path}: parameters do not match the config")
        return model

    # --------------------------------------------------------------- generation

    def _new_kv_cache(self, B: int, T: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block, room for the keys and values of T positions: two (B, H, T, d_h) arrays."""
        c = self.config
        shape = (B, c.n_heads, T, c.d_head)
        return [(np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)) for _ in range(c.n_layers)]

    def _last_logits(self, tokens: np.ndarray, start: int = 0, kv_cache=None) -> np.ndarray:
        """Logits (B, V) of the last position, for ``tokens`` (B, Tq) at positions start..start+Tq-1.

        Without ``kv_cache`` this is a full forward pass over tokens (start must be 0). With
        it, the new keys and values are written into the cache at their positions and each
        query attends to every cached position up to its own: one new token costs one row
        of work per layer instead of the whole sequence.
        """
        c, p = self.config, self.params
        B, Tq = tokens.shape
        H, dh = c.n_heads, c.d_head
        x = p["wte"][tokens.reshape(-1)]
        x.reshape(B, Tq, c.d_model)[...] += p["wpe"][start:start + Tq]
        end = start + Tq
        bias = self._causal_bias[start:end, :end] if Tq > 1 else None   # one new query sees everything
        for i in range(c.n_layers):
            pre = f"h{i}."
            a_in, _ = layer_norm(x, p[pre + "ln1.g"], p[pre + "ln1.b"])
            qkv = linear(a_in, p[pre + "attn.w_qkv"], p[pre + "attn.b_qkv"])
            q, k, v = qkv.reshape(B, Tq, 3, H, dh).transpose(2, 0, 3, 1, 4)
            if kv_cache is not None:
                K, V = kv_cache[i]
                K[:, :, start:end], V[:, :, start:end] = k, v
                k, v = K[:, :, :end], V[:, :, :end]
            y, _ = attention(q, k, v, bias)
            y = y.transpose(0, 2, 1, 3).reshape(B * Tq, c.d_model)
            x = x + linear(y, p[pre + "attn.w_proj"], p[pre + "attn.b_proj"])
            m_in, _ = layer_norm(x, p[pre + "ln2.g"], p[pre + "ln2.b"])
            g, _ = gelu(linear(m_in, p[pre + "mlp.w_fc"], p[pre + "mlp.b_fc"]))
            x = x + linear(g, p[pre + "mlp.w_proj"], p[pre + "mlp.b_proj"])
        h_last = x.reshape(B, Tq, c.d_model)[:, -1]
        h_last, _ = layer_norm(np.ascontiguousarray(h_last), p["ln_f.g"], p["ln_f.b"])
        return h_last @ self._head_weight()

    def _check_prompts(self, prompt_ids, max_new_tokens: int) -> np.ndarray:
        """``prompt_ids`` as a checked (B, P) array (one row for a 1-D sequence) with room for the answer."""
        prompts = np.asarray(prompt_ids)
        if prompts.ndim == 1:
            prompts = prompts[None, :]
        prompts = self._check_tokens(prompts)
        P = prompts.shape[1]
        if P < 1:
            raise ValueError("each prompt needs at least one token (e.g. <bos>)")
        if max_new_tokens < 0 or P + max_new_tokens > self.config.max_len:
            raise ValueError(f"prompt length {P} + max_new_tokens {max_new_tokens} "
                             f"exceeds max_len={self.config.max_len}")
        return prompts

    def generate(
        self,
        prompt_ids,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        rng: np.random.Generator | int | None = None,
        stop_id: int | None = None,
        use_cache: bool = True,
        pad_id: int = 0,
        return_logprobs: bool = False,
        return_logits: bool = False,
    ) -> np.ndarray | Generation:
        """Sample up to ``max_new_tokens`` tokens after each prompt, one token at a time.

        Args:
            prompt_ids: (B, P) token ids, one prompt per row, all of the same length P ≥ 1
                (a 1-D sequence is one prompt). Group prompts by length, or generate
                them one by one, when their lengths differ. P + max_new_tokens ≤ max_len.
            temperature: τ; the next token is drawn from softmax(z / τ) after top-k / top-p
                filtering. τ = 0 means greedy decoding (argmax of z).
            top_k: keep the k largest logits (ties with the k-th are kept); None or k ≥ V = off.
            top_p: nucleus sampling, keep the smallest set of most likely tokens whose
                probability reaches p (ties at the boundary kept); None or 1.0 = off.
            rng: a ``np.random.Generator`` or a seed; one uniform number per row per step is
                drawn from it, so the same seed gives the same tokens (with or without cache).
            stop_id: a row is finished after it emits this token (e.g. ``<eos>``); later
                positions hold ``pad_id``. Generation ends early when every row is finished.
            use_cache: keep keys and values of past positions (KV cache) and process one new
                token per step; False recomputes the full forward pass every step.
            return_logprobs, return_logits: also return log q(token) under the distribution
                actually sampled from, and the raw logits of every step (PPO needs both).

        Returns:
            The new tokens (B, n), n ≤ max_new_tokens; or, if ``return_logprobs`` or
            ``return_logits``, a ``Generation(tokens, logprobs, logits, lengths)``.
        """
        prompts = self._check_prompts(prompt_ids, max_new_tokens)
        B, P = prompts.shape
        rng = np.random.default_rng(rng)
        V = self.config.vocab_size
        seq = np.empty((B, P + max_new_tokens), dtype=np.int64)
        seq[:, :P] = prompts
        new_tokens = np.full((B, max_new_tokens), pad_id, dtype=np.int64)
        logprobs = np.zeros((B, max_new_tokens))
        all_logits = np.zeros((B, max_new_tokens, V), dtype=self.dtype) if return_logits else None
        finished = np.zeros(B, dtype=bool)
        lengths = np.zeros(B, dtype=np.int64)
        kv_cache = self._new_kv_cache(B, P + max_new_tokens) if use_cache else None
        n = 0
        for t in range(max_new_tokens):
            if use_cache:   # the prompt in one pass, then one token per step
                logits = self._last_logits(seq[:, :P] if t == 0 else seq[:, P + t - 1:P + t],
                                           start=0 if t == 0 else P + t - 1, kv_cache=kv_cache)
            else:
                logits = self._last_logits(seq[:, :P + t])
            token, logq = sample_next_token(logits, temperature, top_k, top_p, rng)
            token = np.where(finished, pad_id, token)
            new_tokens[:, t], seq[:, P + t] = token, token
            logprobs[:, t] = np.where(finished, 0.0, logq)
            if all_logits is not None:
                all_logits[:, t] = logits
            lengths += ~finished
            n = t + 1
            if stop_id is not None:
                finished |= token == stop_id
                if finished.all():
                    break
        new_tokens = new_tokens[:, :n]
        if not (return_logprobs or return_logits):
            return new_tokens
        return Generation(new_tokens, logprobs[:, :n] if return_logprobs else None,
                          all_logits[:, :n] if all_logits is not None else None, lengths)


SAVE_FORMAT = "tinygpt-npz-1"


def copy_into(params: dict[str, np.ndarray], state) -> None:
    """Copy the arrays of ``state`` into ``params`` in place; keys and shapes must match exactly.

    Shared by every model with a ``params`` dict (TinyGPT, the reward model), so an optimiser
    holding the arrays keeps working after a load.
    """
    missing, unexpected = params.keys() - state.keys(), state.keys() - params.keys()
    if missing or unexpected:
        raise KeyError(f"state_dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    for name, a in params.items():
        value = np.asarray(state[name])
        if value.shape != a.shape:
            raise ValueError(f"{name}: shape {value.shape} in state_dict, {a.shape} in the model")
        a[...] = value
