"""Management API (admin token): events, sources, taxonomy; feature packages add their own."""
