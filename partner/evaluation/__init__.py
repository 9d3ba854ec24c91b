"""Evaluation commands of partner-eval: one module per subcommand."""
