"""The chapter-6 experiments: four challenges of RLHF, each measured on the course's own models.

Four standard challenges of RLHF (reward hacking, annotation quality, distribution shift,
scalability; Casper et al. 2023 survey these and the method's other open problems), each with a
severity and a "mitigation effectiveness" that are *measured*: each challenge is an experiment
on the chapter-2 SFT policy, the chapter-3 reward model and the chapter-5 PPO loop, and each
mitigation is run and compared with the unmitigated case on held-out data. One function per
experiment returns tidy ``pandas`` tables; small settings make them fast enough for the tests,
the chapter's settings (the dataclass defaults) are what :func:`build_experiments_cache` runs
once and stores in ``experiments.npz`` so that the notebook only loads and plots.

Educational material, not medical advice.

One module per concept, in reading order, every name re-exported here
(``from course_utils.challenges import effectiveness``):

* ``common``: effectiveness, the Gao fit, intervals, reward models on the SFT trunk, the
  ensemble reward, sampling and scoring a policy (``evaluate_policy``), PPO with checkpoints;
* ``hacking``: challenge 1, reward hacking (PPO at several β, the Gao fit, three mitigations);
* ``annotation``: challenge 2, annotation quality (noisy labels, majority vote, label smoothing);
* ``shift``: challenge 3, distribution shift (an unseen category, a drifting policy, on-policy labels);
* ``scale``: challenge 4, scalability (parameters, memory, FLOPs, labels; PPO timed live);
* ``summary``: one row per challenge, its severity and best mitigation;
* ``cache``: every experiment at the chapter's settings, stored in and loaded from ``experiments.npz``.

Symbols
-------
=====================  ======================================================================
π_sft, π_ref           the SFT policy (chapter 2); a frozen copy is PPO's reference π_ref
π_θ                    the PPO policy being trained
r_φ                    the learned reward model (chapter 3): the *proxy* PPO maximises
J                      the gold judge's ``overall`` score in [0, 1] (``judge.judge_answer``): the
                       *gold* reward, which PPO never sees
KL                     KL(π_θ ‖ π_ref) per answer in nats, estimated on samples y ~ π_θ as
                       Σ_t [log π_θ(y_t) - log π_ref(y_t)] (unbiased; k1 of ``losses.kl_penalty``)
d                      √KL, the distance Gao et al. (2022) plot rewards against
R(d)                   the gold (or proxy) gain over the SFT policy at distance d
a, b                   the Gao et al. (2022) RL form R(d) = d (a - b log d), fitted by least
                       squares; it peaks at d* = exp(a/b - 1) with R(d*) = b d*
β                      the KL coefficient of PPO
g_sft, g_best,         gold score (mean J on the held-out evaluation prompts) of the SFT policy,
g_hacked, g_M          of the best checkpoint of the hacked run, at the end of the hacked run,
                       and of the policy a mitigation M produced
E                      mitigation effectiveness, the share of the lost quality M recovers:
                       E = (q_M - q_bad) / (q_good - q_bad)  (:func:`effectiveness`)
p                      the extra label-flip rate of the simulated annotators
ε                      label smoothing of the conservative Bradley-Terry loss
Δ                      r_c - r_r - m, the reward margin of a preference pair
σ(u)                   the logistic function 1 / (1 + e^{-u})
L_ε                    -(1-ε) log σ(Δ) - ε log σ(-Δ), averaged over pairs
                       (``losses.bradley_terry_loss(..., label_smoothing=ε)``)
acc                    reward-model accuracy: share of held-out pairs with r_c > r_r (dataset labels)
agree                  share of decisive policy-sample pairs (|ΔJ| ≥ gap) that r_φ orders like J
N, D, V                parameters, model width d_model, vocabulary size
C                      training compute ≈ 6 N per token (forward 2N + backward 4N; Kaplan et al. 2020)
=====================  ======================================================================

Effectiveness, defined once for every challenge (:func:`effectiveness`)::

    E = (q_M - q_bad) / (q_good - q_bad)

q is the challenge's quality measure (gold score, reward-model accuracy, agreement with the
gold judge), q_good its value without the problem, q_bad with the problem and no mitigation,
q_M with the problem and mitigation M. E = 1: M recovers everything the problem cost; E = 0:
nothing; E > 1: M beats the problem-free reference; E < 0: M makes things worse. E is
undefined (NaN) when the problem cost nothing (q_good ≤ q_bad). Every E comes with a
bootstrap 95% interval over the held-out prompts or pairs, because q_good - q_bad is a small
difference of noisy means.

Public API: the experiments :func:`reward_hacking_experiment`, :func:`annotation_experiment`,
:func:`distribution_shift_experiment`, :func:`scalability_experiment`, :func:`summary_table`;
their settings :class:`HackingSettings`, :class:`NoiseSettings`, :class:`ShiftSettings`,
:class:`ScaleSettings`; the pieces :func:`effectiveness`, :func:`fit_gao`, :func:`gao_curve`,
:func:`noisy_labels`, :func:`evaluate_policy`, :func:`run_ppo_checkpointed`,
:class:`EnsembleReward`, :class:`HackingRuns` (what the reward-hacking runs produced),
:func:`measure_ppo_cost` (timings, never cached), :func:`run_all` (every experiment at
:data:`CHAPTER_SETTINGS`); the cache :func:`build_experiments_cache`, :func:`save_tables`,
:func:`load_tables`, :func:`load_experiments_cache`. The conservative loss is
``losses.bradley_terry_loss(..., label_smoothing=ε)``, trained with
``reward.train_reward_model(..., label_smoothing=ε)``.
"""

# Also re-exported: the private helpers other modules use (_orient: widgets) and the tests
# (_early_stop, _decisive_pairs, _agreement). The intervals come from course_utils.stats.
from .annotation import NOISE_METHODS, NoiseSettings, _orient, annotation_experiment, noisy_labels
from .cache import (CACHE_FILE, CACHE_FORMAT, CHAPTER_SETTINGS, ChapterSettings, build_experiments_cache,
                    load_experiments_cache, load_tables, run_all, save_tables)
from .common import (EnsembleReward, PPORun, effectiveness, evaluate_policy, fit_gao, gao_curve, gao_peak, repetition,
                     run_ppo_checkpointed)
from .hacking import (HACKING_MITIGATIONS, HackingRuns, HackingSettings, _early_stop, hacking_ppo_config,
                      reward_hacking_experiment, split_rl_prompts)
from .scale import ScaleSettings, measure_ppo_cost, ppo_state_bytes, scalability_experiment
from .shift import ShiftSettings, _agreement, _decisive_pairs, distribution_shift_experiment
from .summary import CHALLENGES, SEVERITY_RULE, severity, summary_table

__all__ = [
    "CHALLENGES",
    "SEVERITY_RULE",
    "HackingSettings",
    "NoiseSettings",
    "ShiftSettings",
    "ScaleSettings",
    "PPORun",
    "EnsembleReward",
    "HackingRuns",
    "HACKING_MITIGATIONS",
    "CHAPTER_SETTINGS",
    "ChapterSettings",
    "NOISE_METHODS",
    "CACHE_FILE",
    "CACHE_FORMAT",
    "effectiveness",
    "fit_gao",
    "gao_curve",
    "gao_peak",
    "repetition",
    "hacking_ppo_config",
    "split_rl_prompts",
    "ppo_state_bytes",
    "run_all",
    "noisy_labels",
    "evaluate_policy",
    "run_ppo_checkpointed",
    "reward_hacking_experiment",
    "annotation_experiment",
    "distribution_shift_experiment",
    "scalability_experiment",
    "measure_ppo_cost",
    "severity",
    "summary_table",
    "build_experiments_cache",
    "save_tables",
    "load_tables",
    "load_experiments_cache",
]
