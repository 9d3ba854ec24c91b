"""partner-serve: suggested sentence-level edits for a human supporter, in a local web page (``app``), ranked by
the preference model (``suggest``); the person's choices can be logged and become preference pairs
(``feedback``)."""
