"""
==============================================
GradNorm scores of positive and negative nouns
==============================================

:func:`~skgradnorm.gradnorm_scores` gives every noun of the bank the norm of the
gradient of a cross-entropy loss (times the temperature):

.. math::

    \\mathrm{score}(e) = \\big\\| s - \\mathrm{onehot}(k^*) \\big\\|_p \\, \\| e \\|_p,
    \\qquad s = \\mathrm{softmax}(We/T),\\quad k^* = \\arg\\max_k s_k .

A **small** score means that the noun is confidently close to one image centre: a
*positive* noun. This example fits the image centres on a planted world and plots the
scores of each kind of noun the world plants: positive nouns (close to one class), style
nouns (close to an image style seen in every class), blend nouns (halfway between two
classes), generic nouns (close to every image) and unrelated random nouns.
"""

# %%
# Scores of the whole bank
# ------------------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax

from skgradnorm import GradNormNounSelector, gradnorm_scores
from skgradnorm.datasets import make_planted_world

world = make_planted_world(random_state=0)
temperature = 0.05
selector = GradNormNounSelector(
    world.noun_embeddings, n_centers=15, temperature=temperature, random_state=0
).fit(world.data)
W = selector.centers_  # (15, d) unit image centres
E = world.noun_embeddings  # (n_nouns, d) unit noun embeddings

# The same scores as selector.scores_, from the scoring function itself.
scores, assignments = gradnorm_scores(E, W, temperature=temperature)
assert np.allclose(scores, selector.scores_)

kinds = ["positive", "style", "blend", "generic", "random"]
for kind in kinds:
    s = scores[world.noun_kind == kind]
    print(f"{kind:>8}: {s.size:5d} nouns, median score {np.median(s):.3f}")

# %%
# The distribution by noun kind
# -----------------------------
# Left: the scores of each kind (violins, with every noun drawn as a dot). Right: the
# score against the noun's confidence :math:`c = \max_k s_k`. For a unit noun the
# :math:`p=2` score lies between :math:`1-c` and :math:`\sqrt{2}\,(1-c)` (the black
# lines): it is mostly a confidence, refined by how the rest of the softmax mass is
# spread. The :math:`p=1` score, :math:`2(1-c)\|e\|_1`, is a function of the confidence
# alone: TAC's rule.

confidence = softmax(E @ W.T / temperature, axis=1).max(axis=1)
colors = {
    "positive": "#2ca02c",
    "style": "#9467bd",
    "blend": "#ff7f0e",
    "generic": "#d62728",
    "random": "#7f7f7f",
}
rng = np.random.RandomState(0)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
data = [scores[world.noun_kind == kind] for kind in kinds]
parts = ax1.violinplot(data, showmedians=True, widths=0.8)
for body, kind in zip(parts["bodies"], kinds, strict=False):
    body.set_facecolor(colors[kind])
    body.set_alpha(0.35)
for i, (kind, values) in enumerate(zip(kinds, data, strict=False), start=1):
    jitter = rng.uniform(-0.12, 0.12, size=values.size)
    ax1.scatter(i + jitter, values, s=3, color=colors[kind], alpha=0.5)
ax1.set_xticks(range(1, len(kinds) + 1), kinds)
ax1.set_ylabel("GradNorm score (p=2)")
ax1.set_title("Positive nouns have the smallest scores")

for kind in kinds[::-1]:
    mask = world.noun_kind == kind
    ax2.scatter(confidence[mask], scores[mask], s=4, color=colors[kind], label=kind, alpha=0.6)
c_grid = np.linspace(confidence.min(), 1.0, 200)
ax2.plot(c_grid, 1 - c_grid, color="black", linewidth=1, label="1 - c")
ax2.plot(
    c_grid,
    np.sqrt(2) * (1 - c_grid),
    color="black",
    linewidth=1,
    linestyle="--",
    label="sqrt(2) (1 - c)",
)
ax2.set_xlabel("confidence c = max softmax(We/T)")
ax2.set_ylabel("GradNorm score (p=2)")
ax2.set_title("Small score = confident noun")
ax2.legend(fontsize=8, markerscale=3)
fig.tight_layout()
plt.show()

# %%
# Which nouns survive
# -------------------
# Each centre keeps its ``top_k=5`` nouns with the smallest scores. Almost all of them are
# positive, although positive nouns are only about one noun in eight of the bank:

kept_kinds = world.noun_kind[selector.selected_indices_]
for kind in kinds:
    print(f"{kind:>8}: {np.sum(kept_kinds == kind):3d} kept")

# %%
# Generic nouns such as "photo" have high scores although they are close to every image:
# being close to *every* centre spreads their softmax evenly, so their confidence is low.
# This is why GradNorm, unlike a plain nearest-noun retrieval over the whole bank, does
# not let them in.
