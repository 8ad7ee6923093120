"""Every PostgreSQL advisory-lock id of the code base, in one leaf module so none collide.

A leaf: it imports nothing, so any layer (storage, processing, scale-out, features) may use it.
"""

from __future__ import annotations

# Appends take this transaction lock so log positions are drawn and committed in order (no gap
# a processor could skip); retention and erasure take it to change the log under appends.
APPEND = 0x6C6F67  # "log"
# One migrator at a time across processes.
MIGRATE = 0x656E6761  # "enga"
# Partition maintenance (session lock): one maintainer at a time, the others skip a round.
MAINTENANCE = 0x6D61696E  # "main"
# Class of the processor-cursor locks (two-key form; the second key is hashtext(cursor name)).
PROCESSOR_CLASS = 0x70726F63  # "proc"
