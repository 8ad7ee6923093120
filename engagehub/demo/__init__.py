"""Demo traffic: a seeded week of campaigns from every vendor, signed and sent like the real thing.

``week.build`` plans it (pure, deterministic), ``run.run`` sends it, ``report.summary``
tells the newcomer where to look.
"""
