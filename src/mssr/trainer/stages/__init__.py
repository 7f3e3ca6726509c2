"""The stages of one training step, as functions over the run's parts and the step's :class:`StepData`
(docs/architecture.md, "One training step as data"); :func:`mssr.trainer.step.train_step` runs them in order.

- :mod:`.generation`: choose the prompts, generate, score, gather the rows of every rank;
- :mod:`.logprobs`: old log-probs and the shaping entropy, reference log-probs, SPO's policy drift;
- :mod:`.advantages`: the tracker's initialisation, advantages (+ shaping), the tracker's update;
- :mod:`.update`: the policy update over mini-batches (the plan is a pure function);
- :mod:`.metrics`: the step's logged statistics.
"""
