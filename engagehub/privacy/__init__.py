"""Privacy: erase and export a person, and suppress an erased person's future events."""
