"""The SFT anchor of PPO ("PPO-ptx"): keep imitating the demonstrations while RL updates the policy.

Ouyang et al. (2022, InstructGPT, eq. 2) add to the RL objective a term γ · E[log π(x_pre)] on
pretraining text, so that PPO does not lose what the model could already do (the "alignment
tax"). Chapter 5's policy is small and answers a question by recalling which case it is about;
RL updates on a few prompts nudge that recall for wordings it never trains on, and a held-out
question can move to a fluent answer for *another* case. The anchor here is the same idea with
the SFT demonstrations as the text: every PPO minibatch step also takes the gradient of

    γ · L_SFT,     L_SFT = ⟨-log π_θ(y_t | x, y_<t)⟩ over the response tokens of b demonstrations

so the step minimises L_PPO + γ L_SFT. With γ = 0 (``PPOConfig.ptx_coef``'s default) nothing
changes, not even the random stream of the run.

Symbols
-------
=========  ==================================================================================
γ          ``ptx_coef``, the weight of the SFT term in each minibatch's loss
b          ``ptx_batch``, demonstrations drawn (without replacement) for each minibatch step
(x, y)     a demonstration: prompt and expert response (``data.load_sft()``)
L_SFT      the masked next-token cross-entropy of chapter 2 (prompt tokens masked out)
=========  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .losses import cross_entropy
from .model import TinyGPT
from .tokenizer import VocabularyTokenizer
from .training import sft_batch

__all__ = ["SFTAnchor"]


class SFTAnchor:
    """γ · L_SFT on random minibatches of demonstrations, with its gradient (see the module docstring).

    Draws from its own generator (seeded by ``seed``), so a run with the anchor samples its
    rollouts and minibatches exactly as the same run without it would.
    """

    def __init__(self, tok: VocabularyTokenizer, demos: Sequence[Mapping], coef: float, batch: int,
                 seed: int = 0) -> None:
        if coef < 0 or batch < 1:
            raise ValueError(f"the SFT anchor needs ptx_coef >= 0 and ptx_batch >= 1, got {coef} and {batch}")
        if not demos:
            raise ValueError("the SFT anchor needs at least one demonstration")
        self.tok, self.demos, self.coef, self.batch = tok, list(demos), float(coef), int(batch)
        self.rng = np.random.default_rng([seed, 0x5F7])

    def loss_and_grads(self, policy: TinyGPT) -> tuple[float, dict[str, np.ndarray]]:
        """(γ L_SFT, its gradient keyed like ``policy.params``) on b fresh demonstrations.

        Runs its own forward and backward pass, so call it after the PPO loss's backward."""
        idx = self.rng.choice(len(self.demos), size=min(self.batch, len(self.demos)), replace=False)
        x, y, m = sft_batch(self.tok, [self.demos[i] for i in idx], True, policy.config.max_len)
        loss, dlogits = cross_entropy(policy.forward(x), y, m)
        grads = policy.backward(dlogits * np.asarray(self.coef, dtype=dlogits.dtype))
        return self.coef * loss, grads
