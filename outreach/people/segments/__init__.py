"""Segments: dynamic audiences defined by rules (``rules``), evaluated for one person
(``facts``, ``evaluate``), kept current incrementally (``membership``), built in the
background (``build``), saved (``catalog``) and read (``reading``: members, preview,
explain). Importing the package imports none of them: the people services call
``membership.touch`` and ``reading`` uses their views."""
