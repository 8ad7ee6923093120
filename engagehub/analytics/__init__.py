"""Analytics: message lifecycles, campaign rollups and stats, folded from the log in SQL."""
