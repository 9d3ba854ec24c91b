"""Blinded A/B studies with human raters: export a rater package, analyse the ratings.

``export``: partner-rewrite outputs of several systems -> items with opaque ids, sides
randomised and balanced from a recorded seed, a CSV for survey platforms, a self-contained
offline HTML rating page, a manifest, and a private key file. ``analyze``: ratings + key ->
win/tie/loss with Wilson intervals, sign tests, Krippendorff's alpha, a markdown report and a
Fig. 5-style bar chart.
"""
