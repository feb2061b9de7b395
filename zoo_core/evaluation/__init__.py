"""The evaluation harness: protocols, feature extractors, metrics, results and the
leaderboard (see docs/evaluation.md)."""
