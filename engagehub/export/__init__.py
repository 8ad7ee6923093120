"""Warehouse export: the log as Parquet or Avro files in the Braze Currents layout.

``event_type=<canonical event>/date=YYYY-MM-DD-HH/seq-<first>-<last>.<ext>``, one typed schema
(``schema.SCHEMA_VERSION``) for every event type, written incrementally with a durable cursor
per target and a write-ahead range so a crashed run is redone with the same file names.
"""
