"""Scale-out on PostgreSQL: partitioned log and retention, ``engagehub worker``, maintenance."""
