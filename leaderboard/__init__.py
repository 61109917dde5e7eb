"""Leaderboard: the run database, aggregation over seeds, paper tables and the static HTML site."""
