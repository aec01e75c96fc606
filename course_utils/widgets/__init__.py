"""The course's interactive widgets: thin ipywidgets wrappers around the numerical core.

One module per chapter that has widgets, every name re-exported here
(``from course_utils.widgets import sft_widget``):

* ``_common``: the pattern every widget follows, the sane ranges of the knobs, sliders and output;
* ``welcome``: chapter 0, the temperature of next-word sampling;
* ``pretraining``: chapter 1, a short pretraining run;
* ``sft``: chapter 2, a short supervised fine-tuning run;
* ``reward``: chapter 3, the Bradley-Terry margin and the reward model's learning rate;
* ``elo``: chapter 4, online Elo against Bradley-Terry, the expected-score curve;
* ``ppo``: chapter 5, the clipped surrogate, the KL-regularised optimum, mini-PPO, a short PPO run;
* ``challenges``: chapter 6, reward hacking along cached runs, noisy preference labels;
* ``scorecard``: chapter 7, the scorecard of the chosen stages and categories;
* ``beyond``: chapter 8, DPO's β on a handful of answers, best-of-n over the cached samples.
"""

from ._common import (EPS_VALUES, SANE_RANGES, WIDE, _ADAM, SaneRange, _caught, _choice_slider, _interactive,
                      _log_values, _num, _options, _render, _sanity)
from .beyond import best_of_n_view, best_of_n_widget, dpo_beta_view, dpo_beta_widget
from .challenges import (NOISE_WIDGET_METHODS, hacking_curves_view, hacking_curves_widget, noise_rate_view,
                         noise_rate_widget)
from .elo import (ELO_DEMO_INIT, ELO_DEMO_STRENGTHS, _odds_text, elo_k_view, elo_k_widget, expected_score_view,
                  expected_score_widget)
from .ppo import (_kl, bandit_ppo_view, bandit_ppo_widget, kl_optimum_view, kl_optimum_widget, kl_tradeoff,
                  ppo_clip_curves, ppo_clip_view, ppo_clip_widget, ppo_run_view, ppo_run_widget)
from .pretraining import pretraining_view, pretraining_widget
from .reward import bt_curves, bt_margin_view, bt_margin_widget, reward_lr_view, reward_lr_widget
from .scorecard import scorecard_view, scorecard_widget
from .sft import sft_view, sft_widget
from .welcome import softmax_with_temperature, temperature_view, temperature_widget
