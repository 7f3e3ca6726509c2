"""The grader-generalisation study, beside the grader rather than inside it: synthetic graded files in the
official pipeline's response styles (:mod:`.synthetic`), and leave-one-system-out rule selection over real and
synthetic files (:mod:`.generalisation`); ``mssr grade --generalisation`` runs it (docs/rewards.md)."""
