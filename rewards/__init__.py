"""Reward functions over batches of (seeker, original, rewritten, edit); they train nothing."""
